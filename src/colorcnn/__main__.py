from colorcnn.cli import run

run()
