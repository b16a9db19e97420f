"""Colours that stay readable: WCAG 2.x contrast, and a nudge toward it.

The state colours come from :data:`connmgr.machine.STATE_EFFECTS`. Whether they
are readable depends on the background they land on (a light or dark status
bar), so the widgets pass each colour through :func:`readable_color`, which
darkens or lightens it just enough to reach the ratio asked for: 4.5:1 for text
(WCAG 1.4.3, level AA), 3:1 for a graphic such as the status dot (WCAG 1.4.11).

Pure functions on ``"#rrggbb"`` strings, no Qt, so tests can check them directly.

Example::

    contrast_ratio("#1a7f37", "#ffffff")            # 5.1
    readable_color("#9a6700", "#1e1e1e", 4.5)       # a lighter amber that passes
"""

from __future__ import annotations

__all__ = [
    "AA_GRAPHIC",
    "AA_TEXT",
    "contrast_ratio",
    "parse_hex",
    "readable_color",
    "relative_luminance",
    "to_hex",
]

#: WCAG AA minimum for normal text.
AA_TEXT = 4.5
#: WCAG AA minimum for graphical objects and user-interface components.
AA_GRAPHIC = 3.0


def parse_hex(color: str) -> tuple[int, int, int]:
    """``"#rrggbb"`` (or ``"#rgb"``) as an ``(r, g, b)`` tuple of 0-255 ints."""
    text = color.strip().lstrip("#")
    if len(text) == 3:
        text = "".join(c * 2 for c in text)
    if len(text) != 6:
        raise ValueError(f"color must be '#rrggbb', got {color!r}")
    try:
        value = int(text, 16)
    except ValueError:
        raise ValueError(f"color must be '#rrggbb', got {color!r}") from None
    return (value >> 16) & 0xFF, (value >> 8) & 0xFF, value & 0xFF


def to_hex(rgb: tuple[int, int, int]) -> str:
    """``(r, g, b)`` as ``"#rrggbb"``."""
    r, g, b = (max(0, min(255, round(c))) for c in rgb)
    return f"#{r:02x}{g:02x}{b:02x}"


def _linear(channel: int) -> float:
    c = channel / 255.0
    return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4


def relative_luminance(color: str) -> float:
    """WCAG relative luminance, 0 (black) to 1 (white)."""
    r, g, b = parse_hex(color)
    return 0.2126 * _linear(r) + 0.7152 * _linear(g) + 0.0722 * _linear(b)


def contrast_ratio(foreground: str, background: str) -> float:
    """WCAG contrast ratio between two colours, 1.0 to 21.0 (order does not matter)."""
    a = relative_luminance(foreground)
    b = relative_luminance(background)
    light, dark = max(a, b), min(a, b)
    return (light + 0.05) / (dark + 0.05)


def readable_color(color: str, background: str, minimum: float = AA_TEXT) -> str:
    """``color``, or the nearest shade of it that reaches ``minimum`` contrast on ``background``.

    On a light background the colour is mixed toward black, on a dark one toward
    white, in small steps, so the hue stays recognisable. Returns ``color``
    unchanged when it already passes.
    """
    if contrast_ratio(color, background) >= minimum:
        return color
    target = (0, 0, 0) if relative_luminance(background) > 0.18 else (255, 255, 255)
    rgb = parse_hex(color)
    for step in range(1, 21):
        t = step / 20
        mixed = to_hex(tuple(c + (x - c) * t for c, x in zip(rgb, target, strict=True)))  # type: ignore[arg-type]
        if contrast_ratio(mixed, background) >= minimum:
            return mixed
    return to_hex(target)
