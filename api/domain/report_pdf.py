"""A study report as a one-page PDF a researcher can hand over: title, study, audience, date, the
chart of mean emotions per second with their 95% bands, the attention curve and the legend, and the
summary scores. Drawn with fpdf2's core fonts and vector lines (no picture of anyone, no browser needed)."""

from __future__ import annotations

from datetime import date

from fpdf import FPDF

from api.engine.preprocess import EMOTIONS

# The colours of the page's chart (api/web/static/common.js EMOTION_COLOURS), as RGB.
EMOTION_RGB = {
    "angry": (214, 39, 40),
    "disgust": (140, 86, 75),
    "fear": (148, 103, 189),
    "happy": (230, 168, 0),
    "sad": (31, 119, 180),
    "surprise": (23, 190, 207),
    "neutral": (127, 127, 127),
}
ATTENTION_RGB = (90, 90, 90)  # darker than neutral's grey, so the two lines are told apart
CHART_LEFT, CHART_TOP, CHART_WIDTH, CHART_HEIGHT = 25.0, 52.0, 170.0, 70.0  # mm on A4 portrait


def report_pdf(name: str, report: dict, today: date) -> bytes:
    """`report` is studies.report's answer (openapi.yaml StudyReport)."""
    pdf = FPDF(format="A4")
    pdf.set_title(_latin1(f"{name}: audience report"))
    pdf.add_page()
    pdf.set_font("helvetica", "B", 16)
    pdf.cell(0, 9, _latin1(f"Audience report: {name}"), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("helvetica", "", 10)
    audience = f"{report['viewers']} viewer{'' if report['viewers'] == 1 else 's'} analysed"
    if not report["low_quality_included"] and report["low_quality_sessions"]:
        audience += f" ({report['low_quality_sessions']} low-quality sessions left out)"
    pdf.cell(0, 6, f"{audience} | {report['stimulus_duration_ms'] / 1000:.1f} s stimulus | {today.isoformat()}")
    pdf.ln(8)
    pdf.cell(0, 6, "Mean probability of each emotion per second (seconds with too few faces are left blank)")
    _chart(pdf, report)
    pdf.set_xy(CHART_LEFT, CHART_TOP + CHART_HEIGHT + 18)
    _summary(pdf, report["summary"])
    return bytes(pdf.output())


def _chart(pdf: FPDF, report: dict) -> None:
    duration = max(report["stimulus_duration_ms"], 1)
    pdf.set_draw_color(200, 204, 212)
    pdf.rect(CHART_LEFT, CHART_TOP, CHART_WIDTH, CHART_HEIGHT)
    pdf.set_font("helvetica", "", 8)
    for share in (0.0, 0.5, 1.0):
        pdf.text(CHART_LEFT - 9, CHART_TOP + (1 - share) * CHART_HEIGHT + 1, f"{share:.0%}")
    for second in range(0, int(duration // 1000) + 1, max(1, int(duration // 1000) // 10)):
        pdf.text(CHART_LEFT + second * 1000 / duration * CHART_WIDTH - 2, CHART_TOP + CHART_HEIGHT + 5, f"{second} s")

    def x(bucket: dict) -> float:
        return CHART_LEFT + (bucket["start_ms"] + report["bucket_ms"] / 2) / duration * CHART_WIDTH

    def y(share: float) -> float:
        return CHART_TOP + (1 - share) * CHART_HEIGHT

    shown = [b for b in report["buckets"] if b["emotions"] is not None]
    # The 95% bands first, so every curve stays on top; see-through so that overlapping bands all show.
    with pdf.local_context(fill_opacity=0.15):
        for emotion in EMOTIONS if len(shown) > 1 else ():
            pdf.set_fill_color(*EMOTION_RGB[emotion])
            upper = [(x(b), y(b["emotions"][emotion]["ci95"][1])) for b in shown]
            lower = [(x(b), y(b["emotions"][emotion]["ci95"][0])) for b in reversed(shown)]
            pdf.polygon(upper + lower, style="F")
    pdf.set_line_width(0.5)
    for emotion in EMOTIONS:
        pdf.set_draw_color(*EMOTION_RGB[emotion])
        points = [(x(b), y(b["emotions"][emotion]["mean"])) for b in shown]
        if len(points) > 1:
            pdf.polyline(points)
    # Attention is withheld on its own count of viewers (not of faces), so its seconds are its own; dashed and
    # grey as on the page's chart, so it reads apart from the emotions.
    attention = [(x(b), y(b["attention"]["share"])) for b in report["buckets"] if b["attention"] is not None]
    if len(attention) > 1:
        pdf.set_draw_color(*ATTENTION_RGB)
        pdf.set_dash_pattern(dash=1.5, gap=1)
        pdf.polyline(attention)
        pdf.set_dash_pattern()
    pdf.set_line_width(0.2)
    legend = [(emotion, EMOTION_RGB[emotion]) for emotion in EMOTIONS] + [("attention", ATTENTION_RGB)]
    for index, (label, rgb) in enumerate(legend):
        left = CHART_LEFT + index * 21
        pdf.set_fill_color(*rgb)
        pdf.rect(left, CHART_TOP + CHART_HEIGHT + 8, 3, 3, style="F")
        pdf.text(left + 4, CHART_TOP + CHART_HEIGHT + 10.5, label)


def _summary(pdf: FPDF, summary: dict) -> None:
    pdf.set_font("helvetica", "B", 11)
    pdf.cell(0, 7, "Summary scores (mean over viewers, 95% interval)", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("helvetica", "", 10)
    rows = [(emotion, summary["emotions"][emotion]["mean"]) for emotion in EMOTIONS]
    rows += [(score, summary[score]) for score in ("valence", "engagement", "attention")]
    for label, score in rows:
        shown = "withheld (too few viewers)" if score is None else _interval(score)
        pdf.cell(40, 6, label)
        pdf.cell(0, 6, shown, new_x="LMARGIN", new_y="NEXT")


def _interval(score: dict) -> str:
    low, high = score["ci95"]
    return f"{score['mean']:.2f} ({low:.2f} to {high:.2f}, {score['viewers']} viewers)"


def _latin1(text: str) -> str:
    """The core fonts hold Latin-1 only: a study named in another script is shown with '?' for those letters."""
    return text.encode("latin-1", "replace").decode("latin-1")
