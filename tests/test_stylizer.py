"""The long-lived Stylizer: its cache, its events and previews, interrupts and colours."""

import json

import pytest
import torch

from impasto import Inputs, Interrupted, Previews, Runtime, Stylizer
from impasto.color import rgb_to_yiq
from impasto.config import StyleConfig
from impasto.imageio import resize

RECIPE = StyleConfig(size=64, steps=4, content_weight=0.05, tv_weight=1.0)


@pytest.fixture(scope="module")
def stylizer(vgg19):
    return Stylizer(Runtime(device="cpu"), encoder=vgg19)


def _inputs(seed=0):
    generator = torch.Generator().manual_seed(seed)
    content = resize(torch.rand(1, 3, 6, 8, generator=generator), (48, 64)) * 0.5 + 0.25
    style = torch.rand(1, 3, 72, 72, generator=generator)
    return Inputs.of(content, [style])


def _counting(stylizer):
    calls = []
    handle = stylizer.network.register_forward_pre_hook(lambda module, args: calls.append(tuple(args[0].shape)))
    return calls, handle


def test_a_painting_used_again_at_the_same_size_is_not_run_through_the_network_again(stylizer):
    stylizer.clear_cache()
    inputs = _inputs()
    calls, handle = _counting(stylizer)
    try:
        stylizer.run(inputs, RECIPE)
        first = len(calls)
        stylizer.run(inputs, RECIPE)
        second = len(calls) - first
        stylizer.run(inputs, RECIPE.replace(size=80))  # another size: the painting again
        third = len(calls) - first - second
    finally:
        handle.remove()
    style_shape = (1, 3, 55, 55)  # the output's area, 48x64
    assert calls[:first].count(style_shape) == 1
    assert second == first - 1 and style_shape not in calls[first : first + second]
    assert third == first


def test_events_are_json_and_carry_the_image_only_when_asked(stylizer):
    events = []
    stylizer.run(_inputs(), RECIPE, on_progress=events.append)
    assert all(e.image is None for e in events[:-1]) and events[-1].image is not None and events[-1].done
    data = json.loads(json.dumps(events[0].to_json()))
    assert data["step"] == 1 and data["loss"] == events[0].loss and "image" not in data
    assert data["groups"]["style"] == pytest.approx(sum(v for k, v in events[0].terms.items() if k.startswith("style")))
    every = []
    stylizer.run(_inputs(), RECIPE, on_progress=every.append, previews=Previews(every_steps=2))
    assert [e.image is not None for e in every] == [False, True, False, True, True]


def test_ctrl_c_gives_the_picture_so_far_at_the_output_size(stylizer):
    recipe = RECIPE.replace(size=96, start_size=32, steps=5)

    def interrupt(event):
        if event.step == 2:
            raise KeyboardInterrupt

    with pytest.raises(Interrupted) as raised:
        stylizer.run(_inputs(), recipe, on_progress=interrupt)
    assert raised.value.image.shape == (1, 3, 72, 96)  # the output's size, not the first scale's
    assert raised.value.progress.step == 2 and raised.value.progress.scale == 0


def test_colors_content_hands_out_the_photo_colours_everywhere(stylizer):
    inputs = _inputs()
    recipe = RECIPE.replace(colors="content", steps=3, size=96, start_size=48)
    events = []
    with pytest.raises(Interrupted) as raised:

        def listen(event):
            events.append(event)
            if event.step == 4:
                raise KeyboardInterrupt

        stylizer.run(inputs, recipe, on_progress=listen, previews=Previews(every_steps=1))
    pictures = [e.image for e in events] + [raised.value.image]
    for picture in pictures:  # previews (any scale) and the interrupted picture
        photo = rgb_to_yiq(resize(inputs.content, tuple(picture.shape[-2:]), "bicubic"))[:, 1:]
        inside = (picture > 0.01).all(dim=1, keepdim=True) & (picture < 0.99).all(dim=1, keepdim=True)
        assert inside.float().mean() > 0.5  # (where the gamut clips, the chroma cannot be the photo's)
        assert torch.allclose(rgb_to_yiq(picture)[:, 1:] * inside, photo * inside, atol=2e-3)
        assert (photo * inside).abs().amax() > 0.05  # a grey picture would fail the line above
    done = []
    result = stylizer.run(inputs, recipe, on_progress=done.append)
    assert torch.equal(done[-1].image, result)
    # The last event scores the picture it carries, as the objective (on luminance) sees it.
    from impasto.color import luminance

    again = []
    grey = luminance(result)
    stylizer.run(Inputs.of(inputs.content, inputs.styles, init=grey), recipe.replace(init="image", steps=1,
                 start_size=None), on_progress=again.append)  # fmt: skip
    assert again[0].terms["tv"] == pytest.approx(done[-1].terms["tv"], rel=1e-4)


def test_above_the_look_size_the_picture_seen_at_it_is_held_to_the_one_painted_there(stylizer):
    recipe = RECIPE.replace(size=128, start_size=64, first_steps=4, look_size=64)
    inputs = _inputs(3)
    small = stylizer.run(inputs, recipe.replace(size=64, look_size=None))  # the first scale, alone
    results, keys = {}, {}
    for weight in (0.0, 1e11):  # this recipe's loss is ~1e7: its look term must be as large
        events = []
        results[weight] = stylizer.run(inputs, recipe.replace(look_weight=weight), on_progress=events.append)
        keys[weight] = {e.scale: set(e.terms) for e in events if not e.done}
    assert "look" not in keys[1e11][0] and all("look" in keys[1e11][k] for k in (1, 2))

    def off(picture):  # the picture seen at the look size, against the one painted there
        return (resize(picture, (48, 64), "bilinear") - small).square().mean().item()

    assert off(results[1e11]) < 0.25 * off(results[0.0])
