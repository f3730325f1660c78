#!/usr/bin/env python3
"""Draw mirrortray's tray icons, reproducibly, with the Python standard library only.

The motif is two overlapping sheets: a light "source" sheet behind, and the
"backup" sheet in front, coloured by state and carrying the state's glyph:

    idle    green sheet, white check mark
    busy    blue sheet, two white circular arrows (sync)
    paused  amber sheet, two dark pause bars
    error   red sheet, white "!"
    setup   slate sheet, white "+" (no folder is backed up yet: add one)

Legibility on light and dark panels: every sheet has a dark outline (it reads
on light panels) and a fill that is light or saturated enough to read on dark
panels without the outline. The outline lies inside each sheet's box, and box
edges are snapped to whole pixels per size, so small sizes stay sharp.

Shapes are signed distance functions in a 32 x 32 design space; each pixel is
supersampled (SS x SS samples, painted back to front, then averaged with
premultiplied alpha), which gives clean anti-aliased edges at every size. The
outline width is chosen in whole *pixels* per output size.
The PNG encoder is deterministic (no timestamps, no metadata, fixed zlib
level): running this script again gives the same pixels, and with the same
zlib the committed files byte for byte.

The application's own icon (menus, the package) is the idle state: the
tray's sizes above, plus mirrortray-48/64/128/256.png and mirrortray.svg,
drawn from the same shapes with an outline that grows with the size.

Usage:
    python3 icons/make_icons.py                 # write icons next to this file
    python3 icons/make_icons.py --preview P.png # also write a preview sheet
"""

import math
import os
import struct
import sys
import zlib

STATES = ("idle", "busy", "paused", "error", "setup")
# Written as NAME.png (32 px, what the app loads) and NAME-<size>.png.
SIZES = (32, 24, 22, 16)
MAIN_SIZE = 32
# The application icon's larger sizes (hicolor), written as mirrortray-<size>.png.
APP_SIZES = (48, 64, 128, 256)
SS = 8  # supersamples per pixel per axis
DESIGN = 32.0  # design space is 0..32 on both axes

# Colours (r, g, b, a) with a in 0..1.
OUTLINE = (0x20, 0x24, 0x2A, 0.9)
BACK_FILL = (0xE6, 0xE9, 0xEE, 1.0)
WHITE = (0xFF, 0xFF, 0xFF, 1.0)
STATE_FILL = {
    "idle": (0x1E, 0x9E, 0x5A, 1.0),
    "busy": (0x2B, 0x7B, 0xE4, 1.0),
    "paused": (0xF2, 0xB1, 0x2E, 1.0),
    "error": (0xE0, 0x32, 0x2A, 1.0),
    "setup": (0x5B, 0x6B, 0x7D, 1.0),
}
PAUSE_BARS = (0x3A, 0x2A, 0x05, 1.0)

# ---------------------------------------------------------------- geometry --
# Each shape is a function (x, y) -> signed distance in design units
# (negative inside). A layer paints its colour where the distance is negative.


def rounded_box(x0, y0, x1, y1, r):
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    hx, hy = (x1 - x0) / 2 - r, (y1 - y0) / 2 - r

    def sdf(x, y):
        qx, qy = abs(x - cx) - hx, abs(y - cy) - hy
        outside = math.hypot(max(qx, 0.0), max(qy, 0.0))
        return outside + min(max(qx, qy), 0.0) - r

    return sdf


def _seg_dist(x, y, ax, ay, bx, by):
    dx, dy = bx - ax, by - ay
    t = ((x - ax) * dx + (y - ay) * dy) / (dx * dx + dy * dy)
    t = min(1.0, max(0.0, t))
    return math.hypot(x - ax - t * dx, y - ay - t * dy)


def polyline(points, width):
    """A stroke of the given width with round joins and caps."""
    segs = list(zip(points, points[1:]))
    half = width / 2

    def sdf(x, y):
        return min(_seg_dist(x, y, a[0], a[1], b[0], b[1]) for a, b in segs) - half

    return sdf


def polygon(points):
    n = len(points)

    def sdf(x, y):
        inside = False
        d = float("inf")
        for i in range(n):
            ax, ay = points[i]
            bx, by = points[(i + 1) % n]
            d = min(d, _seg_dist(x, y, ax, ay, bx, by))
            if (ay > y) != (by > y) and x < ax + (y - ay) * (bx - ax) / (by - ay):
                inside = not inside
        return -d if inside else d

    return sdf


def union(*shapes):
    return lambda x, y: min(s(x, y) for s in shapes)


def arc_arrow(cx, cy, r, start_deg, sweep_deg, width, head):
    """A circular arc stroke ending in a filled arrowhead, pointing along the sweep."""
    steps = 24
    pts = []
    for i in range(steps + 1):
        a = math.radians(start_deg + sweep_deg * i / steps)
        pts.append((cx + r * math.cos(a), cy + r * math.sin(a)))
    end = math.radians(start_deg + sweep_deg)
    ex, ey = cx + r * math.cos(end), cy + r * math.sin(end)
    # Tangent in the direction of travel, and the outward normal.
    sign = 1 if sweep_deg > 0 else -1
    tx, ty = -math.sin(end) * sign, math.cos(end) * sign
    nx, ny = math.cos(end), math.sin(end)
    tip = (ex + tx * head, ey + ty * head)
    left = (ex + nx * head * 0.95, ey + ny * head * 0.95)
    right = (ex - nx * head * 0.95, ey - ny * head * 0.95)
    return union(polyline(pts, width), polygon([tip, left, right]))


# The two sheets, as boxes (x0, y0, x1, y1, corner radius) in design units.
# The front one is larger: it carries the glyph. Box edges are snapped to whole
# output pixels at every size (see `snap`), so the sheets stay sharp at 16 px.
BACK_BOX = (0.0, 0.0, 20.0, 22.0, 3.0)
FRONT_BOX = (8.0, 8.0, 32.0, 32.0, 4.0)


def snap(v, size):
    """Round a design coordinate to the nearest pixel boundary at this size."""
    return round(v * size / DESIGN) * DESIGN / size


def box(b, size, inset=0.0):
    x0, y0, x1, y1 = (snap(v, size) for v in b[:4])
    r = max(b[4] - inset, 0.5)
    return rounded_box(x0 + inset, y0 + inset, x1 - inset, y1 - inset, r)


def glyph(state, size):
    """The state's glyph, centred on the front sheet as snapped at this size."""
    fx0, fy0, fx1, fy1 = (snap(v, size) for v in FRONT_BOX[:4])
    cx, cy = (fx0 + fx1) / 2, (fy0 + fy1) / 2

    def px_box(x0, y0, x1, y1, r):
        # A box given relative to the glyph centre, edges on whole pixels.
        return rounded_box(
            snap(cx + x0, size), snap(cy + y0, size), snap(cx + x1, size), snap(cy + y1, size), r
        )

    if state == "idle":
        return WHITE, polyline([(cx - 5.9, cy + 0.4), (cx - 1.7, cy + 4.6), (cx + 6.1, cy - 4.8)], 3.6)
    if state == "busy":
        # Short arcs with big heads: the gaps between them must survive at 16 px,
        # or the glyph reads as a plain ring.
        r, w, head = 5.6, 2.2, 4.0
        return WHITE, union(
            arc_arrow(cx, cy, r, 215, 100, w, head),
            arc_arrow(cx, cy, r, 35, 100, w, head),
        )
    if state == "paused":
        return PAUSE_BARS, union(
            px_box(-6.0, -7.0, -2.0, 7.0, 1.0),
            px_box(2.0, -7.0, 6.0, 7.0, 1.0),
        )
    if state == "error":
        return WHITE, union(
            px_box(-2.0, -8.0, 2.0, 2.0, 1.2),
            px_box(-2.0, 4.0, 2.0, 8.0, 1.0),
        )
    if state == "setup":
        return WHITE, union(
            px_box(-7.0, -2.0, 7.0, 2.0, 1.0),
            px_box(-2.0, -7.0, 2.0, 7.0, 1.0),
        )
    raise ValueError(state)


def outline_px(size):
    """The outline in whole pixels: 1 up to 24 px, 2 up to 64, then 1/32 of the size."""
    return 1 if size <= 24 else max(2, round(size / 32))


def layers(state, size):
    """Back-to-front list of (colour, sdf) for one icon at one pixel size.

    Each sheet is its outline colour over the whole box, then its fill inset by
    the outline width: the outline lies inside the box, on whole pixels."""
    px = DESIGN / size  # one output pixel in design units
    outline = outline_px(size) * px
    gcolour, gshape = glyph(state, size)
    return [
        (OUTLINE, box(BACK_BOX, size)),
        (BACK_FILL, box(BACK_BOX, size, outline)),
        (OUTLINE, box(FRONT_BOX, size)),
        (STATE_FILL[state], box(FRONT_BOX, size, outline)),
        (gcolour, gshape),
    ]


# --------------------------------------------------------------- rendering --


def render(state, size, ss=SS):
    """Return size*size RGBA pixels as a list of (r, g, b, a) ints."""
    SS = ss  # noqa: N806 (fewer samples for the large sizes: they need fewer)
    lay = layers(state, size)
    scale = DESIGN / size
    out = []
    for py in range(size):
        for px in range(size):
            pr = pg = pb = pa = 0.0  # premultiplied sums
            for sy in range(SS):
                y = (py + (sy + 0.5) / SS) * scale
                for sx in range(SS):
                    x = (px + (sx + 0.5) / SS) * scale
                    r = g = b = a = 0.0
                    for (cr, cg, cb, ca), sdf in lay:
                        if sdf(x, y) < 0:
                            # "over": new colour on top of what is there.
                            r = cr * ca + r * (1 - ca)
                            g = cg * ca + g * (1 - ca)
                            b = cb * ca + b * (1 - ca)
                            a = ca + a * (1 - ca)
                    pr += r
                    pg += g
                    pb += b
                    pa += a
            n = SS * SS
            a = pa / n
            if a <= 0:
                out.append((0, 0, 0, 0))
            else:
                out.append(
                    (
                        round(pr / n / a),
                        round(pg / n / a),
                        round(pb / n / a),
                        round(a * 255),
                    )
                )
    return out


def png_bytes(width, height, pixels):
    """Encode RGBA pixels as a PNG, deterministically."""

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    raw = bytearray()
    for y in range(height):
        raw.append(0)  # filter: none
        for r, g, b, a in pixels[y * width : (y + 1) * width]:
            raw += bytes((r, g, b, a))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(bytes(raw), 9))
        + chunk(b"IEND", b"")
    )


def svg():
    """The idle icon as SVG, in the 32 x 32 design space (outline 1 unit)."""

    def hexc(c):
        return "#%02x%02x%02x" % c[:3]

    def rect(b, colour, inset=0.0, opacity=1.0):
        x0, y0, x1, y1, r = b
        op = "" if opacity == 1.0 else f' fill-opacity="{opacity}"'
        return (
            f'  <rect x="{x0 + inset:g}" y="{y0 + inset:g}" width="{x1 - x0 - 2 * inset:g}" '
            f'height="{y1 - y0 - 2 * inset:g}" rx="{max(r - inset, 0.5):g}" fill="{hexc(colour)}"{op}/>'
        )

    fx0, fy0, fx1, fy1 = FRONT_BOX[:4]
    cx, cy = (fx0 + fx1) / 2, (fy0 + fy1) / 2
    check = " ".join(
        f"{x:g},{y:g}"
        for x, y in [(cx - 5.9, cy + 0.4), (cx - 1.7, cy + 4.6), (cx + 6.1, cy - 4.8)]
    )
    lines = [
        '<svg xmlns="http://www.w3.org/2000/svg" width="32" height="32" viewBox="0 0 32 32">',
        "  <title>mirrortray</title>",
        rect(BACK_BOX, OUTLINE, opacity=OUTLINE[3]),
        rect(BACK_BOX, BACK_FILL, 1.0),
        rect(FRONT_BOX, OUTLINE, opacity=OUTLINE[3]),
        rect(FRONT_BOX, STATE_FILL["idle"], 1.0),
        f'  <polyline points="{check}" fill="none" stroke="{hexc(WHITE)}" stroke-width="3.6" '
        'stroke-linecap="round" stroke-linejoin="round"/>',
        "</svg>",
    ]
    return "\n".join(lines) + "\n"


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)


# ----------------------------------------------------------------- preview --


def over(bg, px):
    r, g, b, a = px
    t = a / 255
    return tuple(round(c * t + d * (1 - t)) for c, d in zip((r, g, b), bg))


def preview(rendered, path):
    """A sheet: for a light and a dark panel, each state at 1:1 in every size,
    then the 32 px icon and the 16 px icon magnified (nearest neighbour)."""
    panels = [(0xF2, 0xF2, 0xF2), (0x2B, 0x2B, 0x2E)]
    zoom32, zoom16 = 4, 8
    pad = 8
    cell = max(sum(SIZES) + pad * (len(SIZES) - 1), 32 * zoom32, 16 * zoom16)
    width = pad + len(STATES) * (cell + pad)
    row_h = [max(SIZES), 32 * zoom32, 16 * zoom16]
    panel_h = pad + sum(h + pad for h in row_h)
    height = panel_h * len(panels)
    img = [[(0, 0, 0)] * width for _ in range(height)]
    for p, bg in enumerate(panels):
        top = p * panel_h
        for y in range(top, top + panel_h):
            img[y] = [bg] * width
        for i, state in enumerate(STATES):
            left = pad + i * (cell + pad)

            def blit(x0, y0, size, pixels, zoom=1):
                for y in range(size * zoom):
                    for x in range(size * zoom):
                        px = pixels[(y // zoom) * size + x // zoom]
                        img[y0 + y][x0 + x] = over(img[y0 + y][x0 + x], px)

            y = top + pad
            x = left
            for s in SIZES:
                blit(x, y + (max(SIZES) - s), s, rendered[state, s])
                x += s + pad
            y += row_h[0] + pad
            blit(left, y, 32, rendered[state, 32], zoom32)
            y += row_h[1] + pad
            blit(left, y, 16, rendered[state, 16], zoom16)
    flat = [px + (255,) for row in img for px in row]
    write(path, png_bytes(width, height, flat))


def main(argv):
    here = os.path.dirname(os.path.abspath(__file__))
    preview_path = None
    if argv[1:2] == ["--preview"] and len(argv) == 3:
        preview_path = argv[2]
    elif len(argv) > 1:
        print("usage: make_icons.py [--preview SHEET.png]", file=sys.stderr)
        return 2
    rendered = {}
    only = os.environ.get("MAKE_ICONS_ONLY")  # e.g. "setup": one state, no app icon
    for state in STATES:
        if only and state != only:
            continue
        for size in SIZES:
            pixels = render(state, size)
            rendered[state, size] = pixels
            name = f"{state}.png" if size == MAIN_SIZE else f"{state}-{size}.png"
            write(os.path.join(here, name), png_bytes(size, size, pixels))
            print(f"wrote icons/{name}")
    if only:
        return 0
    for size in APP_SIZES:
        name = f"mirrortray-{size}.png"
        pixels = render("idle", size, ss=8 if size <= 64 else 3)
        write(os.path.join(here, name), png_bytes(size, size, pixels))
        print(f"wrote icons/{name}")
    write(os.path.join(here, "mirrortray.svg"), svg().encode())
    print("wrote icons/mirrortray.svg")
    if preview_path:
        preview(rendered, preview_path)
        print(f"wrote {preview_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
