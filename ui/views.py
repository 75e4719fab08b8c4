"""What the demo draws from model outputs, as self-contained HTML: attention heatmaps, token chips,
attention overlays on images.

Pure functions of numpy arrays and strings; every user-supplied token is HTML-escaped.
"""

from __future__ import annotations

import base64
import html
import io

import numpy as np

END = "⟨end⟩"  # how the end-of-sentence position is labelled
MAX_OVERLAYS = 20
MASK_ALPHA = 235  # how dark the least looked-at region is drawn (of 255)


def attention_heatmap(source_tokens: list[str], target_tokens: list[str], attention: np.ndarray) -> str:
    """An HTML table: one row per output token, one column per source token, shaded by attention.

    Args:
        source_tokens: the column labels (an empty string is the end-of-sentence position).
        target_tokens: the row labels, one per row of `attention` shown.
        attention: float[target, source], each row the weights used for that output token.

    Example:
    >>> attention_heatmap(["hola", ""], ["hello"], np.array([[0.9, 0.1]])).count("<td")
    2
    """
    head = "".join(f'<th style="{_HEAD}">{_label(t)}</th>' for t in source_tokens)
    rows = []
    for token, weights in zip(target_tokens, attention):
        cells = "".join(_cell(float(w)) for w in weights[: len(source_tokens)])
        rows.append(f'<tr><th style="{_ROW_HEAD}">{_label(token)}</th>{cells}</tr>')
    return (  # long sentences scroll sideways inside the page rather than widening it
        '<div style="overflow-x:auto"><table class="attention-heatmap" style="border-collapse:collapse;'
        f'font-size:12px"><tr><th style="{_ROW_HEAD}">output ↓ / source →</th>{head}</tr>{"".join(rows)}'
        "</table></div>"
    )


def notice(message: str, kind: str = "note") -> str:
    """A plain-text message set off above a result (what was cut, ignored or unreadable).

    Example:
    >>> notice("a <b> tag", "cut").startswith('<p class="notice notice-cut"')
    True
    """
    return f'<p class="notice notice-{kind}" style="{_NOTICE}">{html.escape(message, quote=False)}</p>'


def token_moves(tokens: list[str], moves: list[float]) -> str:
    """Tokens as chips, green where a token moved the score up, red where it moved it down.

    The colour's strength is the move relative to the largest move in the text, so small models'
    small moves stay visible; each chip's tooltip has the exact move.
    """
    moves = np.nan_to_num(np.asarray(moves, np.float64)).tolist()
    largest = max((abs(m) for m in moves), default=0.0) or 1.0
    chips = []
    for token, move in zip(tokens, moves):
        alpha = min(abs(move) / largest, 1.0) * 0.85
        colour = f"rgba(22,163,74,{alpha:.2f})" if move >= 0 else f"rgba(220,38,38,{alpha:.2f})"
        chips.append(
            f'<span class="token-move" title="{move:+.3f}" '
            f'style="background:{colour};padding:2px 3px;margin:1px;border-radius:3px;'
            f'display:inline-block">{html.escape(token)}</span>'
        )
    return f'<div class="token-moves" style="line-height:2">{"".join(chips)}</div>'


def attention_overlays(image: bytes, attention: np.ndarray, words: list[str], width: int = 180) -> str:
    """HTML: one small copy of the image per word, dimmed where the model did not look.

    The photo is encoded once (a CSS variable every card shares) and each word adds only its
    attention grid as a tiny PNG mask that the browser scales up smoothly, so the page gets one
    JPEG however long the caption, and no files are written.

    Args:
        image: the encoded image the model captioned.
        attention: float[words, regions], regions a square grid in row-major order.
        words: the caption's words, one per attention row (at most 20 are drawn).
        width: each card's width in CSS pixels.
    """
    from PIL import Image

    side = int(round(attention.shape[-1] ** 0.5))
    if side * side != attention.shape[-1]:
        return f"<p>(The model's {attention.shape[-1]} regions are not a square grid; no overlays drawn.)</p>"
    picture = Image.open(io.BytesIO(image))
    picture.draft("RGB", (384, 384))  # JPEGs decode straight at a small size
    if picture.mode in ("RGBA", "LA", "P", "PA"):  # transparency on white, as the model saw it
        rgba = picture.convert("RGBA")
        picture = Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba)
    picture = picture.convert("RGB")
    picture.thumbnail((384, 384))
    height = min(round(width * picture.height / picture.width), 3 * width)  # a sliver stays a card
    attention = np.nan_to_num(attention)
    cards = []
    for weights, word in list(zip(attention, words))[:MAX_OVERLAYS]:
        shade = np.zeros((side, side, 4), np.uint8)
        shade[..., 3] = np.round(MASK_ALPHA * (1.0 - stretched(weights.reshape(side, side))))
        cards.append(
            f'<figure class="attention-word" style="position:relative;display:inline-block;margin:3px;'
            f'width:{width}px;height:{height}px;background:var(--photo) center/100% 100%">'
            f'<img alt="" src="{_data_uri(Image.fromarray(shade, "RGBA"), "PNG")}" '
            'style="position:absolute;left:0;top:0;width:100%;height:100%">'
            '<figcaption style="position:absolute;left:0;bottom:0;padding:1px 5px;'
            f'background:rgba(255,255,255,.85);color:#111;font-size:13px">{html.escape(word)}</figcaption>'
            "</figure>"
        )
    photo = _data_uri(picture, "JPEG")
    return (
        f'<div class="attention-overlays" style="--photo:url({photo})">{"".join(cards)}</div>'
        + attention_legend()
    )


def stretched(weights: np.ndarray) -> np.ndarray:
    """Weights rescaled so the least looked-at region is 0 and the most is 1 (all 1 if equal).

    Attention over 49 regions is spread thin (every weight near 1/49), so scaling by the maximum
    alone leaves every region almost equally bright; stretching from the minimum shows where it looked.

    Example:
    >>> stretched(np.array([0.0, 0.25, 1.0])).tolist()
    [0.0, 0.25, 1.0]
    """
    low, high = float(weights.min()), float(weights.max())
    if not high - low > 1e-9:
        return np.ones_like(weights, np.float64)
    return np.clip((weights - low) / (high - low), 0.0, 1.0)


def attention_legend() -> str:
    """A bar from dark (not looked at) to clear (looked at most), for the overlays above."""
    return (
        '<div class="attention-legend" style="display:flex;align-items:center;gap:6px;font-size:12px">'
        "<span>looked at least</span>"
        f'<span style="width:160px;height:12px;background:linear-gradient(to right,rgba(0,0,0,'
        f'{MASK_ALPHA / 255:.2f}),rgba(0,0,0,0)),#f5f5f4;border:1px solid #999"></span>'
        "<span>most (each word scaled from its own least to most looked-at region)</span></div>"
    )


def _data_uri(picture, fmt: str) -> str:
    buffer = io.BytesIO()
    picture.save(buffer, fmt, **({"quality": 85} if fmt == "JPEG" else {}))
    return f"data:image/{fmt.lower()};base64,{base64.b64encode(buffer.getvalue()).decode()}"


_NOTICE = "padding:6px 10px;margin:4px 0;border-left:4px solid #d97706;background:#fef3c7;color:#111"
_HEAD = "padding:2px 4px;font-weight:600;white-space:nowrap"
_ROW_HEAD = "padding:2px 6px;text-align:right;font-weight:600;white-space:nowrap"
_CELL = "width:2.6em;height:1.8em;text-align:center;border:1px solid #e5e7eb;"


def _cell(weight: float) -> str:
    weight = min(max(weight, 0.0), 1.0) if np.isfinite(weight) else 0.0
    ink = "#fff" if weight > 0.55 else "#111"  # readable on dark and light shades
    shade = f"background:rgba(37,99,235,{weight:.3f})"
    return f'<td title="{weight:.3f}" style="{_CELL}color:{ink};{shade}">{weight:.2f}</td>'


def _label(token: str) -> str:
    return html.escape(token) if token else END
