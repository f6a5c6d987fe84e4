"""Everything that touches pixels: libvips through pyvips, off the event loop."""
