"""What a rendered plotly chart must satisfy, measured in the browser: no text box overlaps another (rotated
tick labels as the rotated rectangles they are), no text runs outside the chart, every plotted value lies inside
its axis's range."""
from __future__ import annotations

CHECK_CHART = """(plot) => {
  const problems = [];
  const name = (plot.querySelector('.gtitle')?.textContent || 'untitled chart').slice(0, 60);
  const shown = t => t.textContent.trim() && t.getBBox().width > 0 && !t.closest('[display="none"]')
      && getComputedStyle(t).visibility !== 'hidden' && getComputedStyle(t).opacity !== '0'
      && !t.closest('.modebar');
  const texts = Array.from(plot.querySelectorAll('svg text')).filter(shown);
  const corners = t => {
    const b = t.getBBox(), m = t.getScreenCTM();
    return [[b.x, b.y], [b.x + b.width, b.y], [b.x + b.width, b.y + b.height], [b.x, b.y + b.height]]
      .map(([x, y]) => [m.a * x + m.c * y + m.e, m.b * x + m.d * y + m.f]);
  };
  // separating-axis test on two convex quadrilaterals, allowing `slack` pixels of overlap
  const apart = (p, q, slack) => {
    for (const poly of [p, q]) for (let i = 0; i < 4; i++) {
      const [x1, y1] = poly[i], [x2, y2] = poly[(i + 1) % 4];
      const len = Math.hypot(x2 - x1, y2 - y1) || 1, nx = (y2 - y1) / len, ny = (x1 - x2) / len;
      const a = p.map(([x, y]) => nx * x + ny * y), b = q.map(([x, y]) => nx * x + ny * y);
      if (Math.min(...a) >= Math.max(...b) - slack || Math.min(...b) >= Math.max(...a) - slack) return true;
    }
    return false;
  };
  const boxes = texts.map(corners);
  for (let i = 0; i < texts.length; i++) for (let j = i + 1; j < texts.length; j++)
    if (!apart(boxes[i], boxes[j], 1.5))
      problems.push(`${name}: "${texts[i].textContent.slice(0, 30)}" overlaps "${texts[j].textContent.slice(0, 30)}"`);
  const frame = plot.querySelector('.main-svg').getBoundingClientRect();
  texts.forEach((t, i) => {
    if (boxes[i].some(([x, y]) => x < frame.left - 1 || x > frame.right + 1 || y < frame.top - 1 || y > frame.bottom + 1))
      problems.push(`${name}: "${t.textContent.slice(0, 30)}" runs outside the chart`);
  });
  const layout = plot._fullLayout;
  for (const trace of plot._fullData || []) {
    if (trace.visible !== true || !['bar', 'scatter'].includes(trace.type)) continue;
    const horizontal = trace.orientation === 'h';
    const axis = layout[(horizontal ? trace.xaxis : trace.yaxis).replace(/^([xy])/, '$1axis')];
    if (!axis || axis.type === 'category' || !axis.range) continue;
    let [lo, hi] = axis.range.map(Number);
    if (axis.type === 'log') { lo = 10 ** lo; hi = 10 ** hi; }
    if (lo > hi) [lo, hi] = [hi, lo];
    const eps = (hi - lo) * 1e-6;
    for (const v of (horizontal ? trace.x : trace.y) || [])
      if (typeof v === 'number' && Number.isFinite(v) && (v < lo - eps || v > hi + eps))
        problems.push(`${name}: ${trace.name || trace.type} value ${v} lies outside the axis range [${lo}, ${hi}]`);
  }
  return problems;
}"""


def chart_problems(page, root: str = "body") -> list[str]:
    """Every problem of every plotly chart under ``root`` on ``page`` (all charts must have been drawn)."""
    return [problem for plot in page.locator(f"{root} .js-plotly-plot").all()
            for problem in plot.evaluate(CHECK_CHART)]
