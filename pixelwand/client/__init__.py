"""Pixel Wand over HTTP: the command-line client (`pixelwand upload|export|assets|collections|
presets`) and the multipart uploader it uses (multipart.py).

It talks to any Pixel Wand deployment through the public REST API (`PIXELWAND_URL`,
`PIXELWAND_API_KEY`), never to the database; the server-side commands live in `cli.py`.
"""
