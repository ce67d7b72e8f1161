"""Models: specs, loading through open_clip (hub and offline), fingerprints, conversion; the built-in
model's configs/ and weights/."""
