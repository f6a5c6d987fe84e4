"""The transform arguments `exportUrl` and `Asset.rendition` share, declared once."""

from __future__ import annotations

from typing import Annotated

import strawberry

Preset = Annotated[str | None, strawberry.argument(description="A preset's name.")]
Format = Annotated[
    str | None,
    strawberry.argument(description="JPEG, PNG, WEBP, AVIF, or AUTO (with a perceptual target)."),
]
Quality = Annotated[int | None, strawberry.argument(description="1-100.")]
MaxWidth = Annotated[int | None, strawberry.argument(description="1-16384.")]
MaxHeight = Annotated[int | None, strawberry.argument(description="1-16384.")]
PreserveAspect = Annotated[bool | None, strawberry.argument(description="Default true.")]
Ttl = Annotated[int | None, strawberry.argument(description="Seconds, 60-86400; default 3600.")]
Gravity = Annotated[
    str | None,
    strawberry.argument(
        description="center (default), focal, attention or entropy: where a crop keeps the "
        "picture; all but center need preserveAspect false."
    ),
]
PosterAt = Annotated[
    str | None,
    strawberry.argument(
        description='Videos only: the poster frame\'s time, seconds ("2.5") or a percentage '
        '("25%", the default); the keyframe at or before it is used.'
    ),
]
Perceptual = Annotated[
    str | None,
    strawberry.argument(
        description="Perceptual target: auto, auto:low|medium|high|best or auto:NN (30-95); "
        "quality is then chosen per image for that SSIMULACRA2 score."
    ),
]
Formats = Annotated[
    list[str] | None,
    strawberry.argument(
        description="With format AUTO: candidate formats (default AVIF, WEBP, JPEG; PNG may "
        "be listed); the smallest output meeting the target wins."
    ),
]
