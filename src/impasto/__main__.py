from impasto.cli import run

run()
