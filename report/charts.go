package report

import (
	"bytes"
	"fmt"
	"image/color"
	"math"
	"regexp"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"

	"github.com/vellumlog/vellum"
)

// Chart is one figure of the report: inline SVG drawn by gonum/plot, and
// the names of the series (or bars) it shows, which the page lists in a
// data attribute so a browser test can check them.
type Chart struct {
	ID     string
	Title  string
	Series []string
	SVG    []byte // empty when there is nothing to draw
	Empty  string // why there is no chart
}

// outcomeColors: one fixed colour per outcome status, in vellum.Statuses
// order (success, failure, denied, approved, pending, blocked).
var outcomeColors = []color.RGBA{
	{0x4c, 0x9a, 0x6a, 0xff}, // success: green
	{0xd9, 0x4f, 0x3d, 0xff}, // failure: red
	{0x8e, 0x44, 0xad, 0xff}, // denied: purple
	{0x2f, 0x7e, 0xc2, 0xff}, // approved: blue
	{0xe6, 0xa1, 0x2b, 0xff}, // pending: amber
	{0x55, 0x55, 0x55, 0xff}, // blocked: grey
}

var barColor = color.RGBA{0x2f, 0x5d, 0x8a, 0xff}

var sans = font.Font{Typeface: "Liberation", Variant: "Sans"}

// newPlot returns a plot with the report's fonts.
func newPlot(title, xLabel, yLabel string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.Title.TextStyle.Font = font.From(sans, 13)
	p.X.Label.Text, p.Y.Label.Text = xLabel, yLabel
	for _, a := range []*plot.Axis{&p.X, &p.Y} {
		a.Label.TextStyle.Font = font.From(sans, 10)
		a.Tick.Label.Font = font.From(sans, 9)
	}
	p.Legend.TextStyle.Font = font.From(sans, 9)
	p.Legend.Top = true
	p.BackgroundColor = color.White
	return p
}

var svgSize = regexp.MustCompile(`<svg width="[^"]*" height="[^"]*"`)

// render draws p as SVG for inlining in HTML: without the XML prolog, and
// scaling to the width of its box.
func render(p *plot.Plot, w, h vg.Length) ([]byte, error) {
	c := vgsvg.New(w, h)
	p.Draw(draw.New(c))
	var b bytes.Buffer
	if _, err := c.WriteTo(&b); err != nil {
		return nil, err
	}
	out := b.Bytes()
	if i := bytes.Index(out, []byte("<svg")); i >= 0 {
		out = out[i:]
	}
	out = svgSize.ReplaceAll(out, []byte(`<svg role="img" width="100%" preserveAspectRatio="xMidYMid meet"`))
	return out, nil
}

// dayTicks labels at most about twelve of n day positions.
type dayTicks struct{ labels []string }

func (t dayTicks) Ticks(min, max float64) []plot.Tick {
	n := len(t.labels)
	step := max1((n + 11) / 12)
	var ticks []plot.Tick
	for i := 0; i < n; i++ {
		tk := plot.Tick{Value: float64(i)}
		if i%step == 0 {
			tk.Label = t.labels[i]
		}
		ticks = append(ticks, tk)
	}
	return ticks
}

// countTicks are the default ticks of a count axis, labelled as whole
// numbers with thousands separators (never "250.00"), without fractions.
type countTicks struct{}

func (countTicks) Ticks(min, max float64) []plot.Tick {
	var out []plot.Tick
	for _, t := range (plot.DefaultTicks{}).Ticks(min, max) {
		if t.Value != math.Trunc(t.Value) {
			if t.Label == "" {
				continue // a minor tick between whole numbers
			}
			t.Label = ""
		} else if t.Label != "" {
			t.Label = groupDigits(uint64(t.Value))
		}
		out = append(out, t)
	}
	return out
}

func max1(n int) int {
	if n < 1 {
		return 1
	}
	return n
}

func dayLabels(days []Day) []string {
	out := make([]string, len(days))
	for i, d := range days {
		out[i] = d.Date.Format("Jan 02")
	}
	return out
}

// perDayByOutcome: records per day, stacked by outcome.
func perDayByOutcome(days []Day) (Chart, error) {
	c := Chart{ID: "records-per-day", Title: "Records per day by outcome"}
	if len(days) == 0 {
		c.Empty = "No records in this period."
		return c, nil
	}
	p := newPlot(c.Title, "day (UTC)", "records")
	w := vg.Points(max(2, min(24, 400/float64(len(days)))))
	var below *plotter.BarChart
	for oi, name := range vellum.Statuses {
		vals := make(plotter.Values, len(days))
		var sum float64
		for i := range days {
			vals[i] = float64(days[i].ByOutcome[oi])
			sum += vals[i]
		}
		if sum == 0 {
			continue
		}
		b, err := plotter.NewBarChart(vals, w)
		if err != nil {
			return c, err
		}
		b.Color = outcomeColors[oi]
		b.LineStyle.Width = 0
		if below != nil {
			b.StackOn(below)
		}
		below = b
		p.Add(b)
		p.Legend.Add(name, b)
		c.Series = append(c.Series, name)
	}
	p.X.Tick.Marker = dayTicks{dayLabels(days)}
	p.X.Min, p.X.Max = -1, float64(len(days))
	var top uint64
	for i := range days {
		top = max(top, days[i].Total())
	}
	p.Y.Min, p.Y.Max = 0, headroom(float64(top), len(c.Series))
	p.Y.Tick.Marker = countTicks{}
	svg, err := render(p, 7.2*vg.Inch, 3*vg.Inch)
	c.SVG = svg
	return c, err
}

// overTime draws one line per named series over the days.
func overTime(id, title string, days []Day, series []string, value func(d *Day, i int) uint64, colors []color.Color) (Chart, error) {
	c := Chart{ID: id, Title: title}
	if len(days) == 0 {
		c.Empty = "No records in this period."
		return c, nil
	}
	p := newPlot(title, "day (UTC)", "records")
	top := 0.0
	for si, name := range series {
		pts := make(plotter.XYs, len(days))
		for i := range days {
			pts[i] = plotter.XY{X: float64(i), Y: float64(value(&days[i], si))}
			top = max(top, pts[i].Y)
		}
		l, s, err := plotter.NewLinePoints(pts)
		if err != nil {
			return c, err
		}
		l.Color, s.Color = colors[si], colors[si]
		l.Width = vg.Points(1.6)
		s.Radius = vg.Points(max(0.5, min(2.2, 120/float64(len(days)))))
		s.Shape = draw.CircleGlyph{}
		p.Add(l, s)
		p.Legend.Add(name, l, s)
		c.Series = append(c.Series, name)
	}
	p.X.Tick.Marker = dayTicks{dayLabels(days)}
	p.X.Min, p.X.Max = -0.5, float64(len(days))-0.5
	p.Y.Min, p.Y.Max = 0, headroom(top, len(series))
	p.Y.Tick.Marker = countTicks{}
	svg, err := render(p, 7.2*vg.Inch, 2.6*vg.Inch)
	c.SVG = svg
	return c, err
}

// topBars is a horizontal bar chart of the largest counts (the rest summed
// as "(others)").
func topBars(id, title, unit string, counts []Count, top int, empty string) (Chart, error) {
	c := Chart{ID: id, Title: title}
	if len(counts) == 0 {
		c.Empty = empty
		return c, nil
	}
	shown := counts
	var others uint64
	if len(shown) > top {
		for _, x := range shown[top:] {
			others += x.N
		}
		shown = shown[:top]
	}
	// Largest at the top: gonum draws the first value at the bottom.
	var vals plotter.Values
	var names []string
	if others > 0 {
		vals = append(vals, float64(others))
		names = append(names, fmt.Sprintf("(%d others)", len(counts)-top))
	}
	for i := len(shown) - 1; i >= 0; i-- {
		vals = append(vals, float64(shown[i].N))
		names = append(names, shown[i].Name)
	}
	for _, x := range shown {
		c.Series = append(c.Series, x.Name)
	}
	p := newPlot(title, unit, "")
	b, err := plotter.NewBarChart(vals, vg.Points(12))
	if err != nil {
		return c, err
	}
	b.Horizontal = true
	b.Color = barColor
	b.LineStyle.Width = 0
	p.Add(b)
	labels, err := plotter.NewLabels(plotter.XYLabels{XYs: barEnds(vals), Labels: countLabels(vals)})
	if err == nil {
		for i := range labels.TextStyle {
			labels.TextStyle[i].Font = font.From(sans, 8)
		}
		labels.Offset = vg.Point{X: vg.Points(3), Y: vg.Points(-3)}
		p.Add(labels)
	}
	p.NominalY(names...)
	p.X.Min = 0
	p.X.Max = maxVal(vals) * 1.15
	p.X.Tick.Marker = countTicks{}
	h := vg.Points(60 + 18*float64(len(vals)))
	svg, err := render(p, 7.2*vg.Inch, h)
	c.SVG = svg
	return c, err
}

// headroom is the top of a y axis that leaves the upper part of the plot
// to the legend of n entries, so the legend never covers data.
func headroom(top float64, n int) float64 {
	return max(1, top) * (1 + 0.09*float64(n) + 0.1)
}

func barEnds(vals plotter.Values) plotter.XYs {
	out := make(plotter.XYs, len(vals))
	for i, v := range vals {
		out[i] = plotter.XY{X: v, Y: float64(i)}
	}
	return out
}

func countLabels(vals plotter.Values) []string {
	out := make([]string, len(vals))
	for i, v := range vals {
		out[i] = strconv.FormatUint(uint64(v), 10)
	}
	return out
}

func maxVal(vals plotter.Values) float64 {
	m := 1.0
	for _, v := range vals {
		m = max(m, v)
	}
	return m
}

// charts draws every chart of the report.
func charts(s *Summary) ([]Chart, error) {
	outcome := func(name string) int {
		for i, v := range vellum.Statuses {
			if v == name {
				return i
			}
		}
		return -1
	}
	denied, pending, failure, blocked := outcome(vellum.StatusDenied), outcome(vellum.StatusPending), outcome(vellum.StatusFailure), outcome(vellum.StatusBlocked)
	var out []Chart
	add := func(c Chart, err error) error {
		if err != nil {
			return fmt.Errorf("report: chart %s: %w", c.ID, err)
		}
		out = append(out, c)
		return nil
	}
	if err := add(perDayByOutcome(s.Days)); err != nil {
		return nil, err
	}
	if err := add(topBars("top-actions", "Top actions", "records", s.Actions, 12, "No records in this period.")); err != nil {
		return nil, err
	}
	if err := add(topBars("top-tools", "Top tools", "records", s.Tools, 12, "No tool calls in this period.")); err != nil {
		return nil, err
	}
	if err := add(overTime("denied-pending", "Denied and approval-pending decisions per day", s.Days, []string{"denied", "pending"},
		func(d *Day, i int) uint64 { return d.ByOutcome[[]int{denied, pending}[i]] },
		[]color.Color{outcomeColors[denied], outcomeColors[pending]})); err != nil {
		return nil, err
	}
	if err := add(overTime("failures", "Failures per day", s.Days, []string{"failure", "blocked", "tool error"},
		func(d *Day, i int) uint64 {
			switch i {
			case 0:
				return d.ByOutcome[failure]
			case 1:
				return d.ByOutcome[blocked]
			}
			return d.ToolErrors
		},
		[]color.Color{outcomeColors[failure], outcomeColors[blocked], color.RGBA{0xc0, 0x39, 0x8b, 0xff}})); err != nil {
		return nil, err
	}
	if err := add(topBars("redactions", "Redaction hits by rule", "values redacted", s.Redactions, 15, "No redaction rule fired in this period.")); err != nil {
		return nil, err
	}
	if err := add(topBars("tenants", "Activity by tenant", "records", s.Tenants, 15, "No records in this period.")); err != nil {
		return nil, err
	}
	return out, nil
}
