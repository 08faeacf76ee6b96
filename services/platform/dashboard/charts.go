package dashboard

import (
	"fmt"
	"html/template"
	"strings"
)

// The chart geometry, in SVG user units.
const (
	barWidth   = 480.0 // the length of a bar at the scale's maximum
	barHeight  = 22.0
	barGap     = 8.0
	lineWidth  = 640.0
	lineHeight = 220.0
	linePad    = 36.0
)

type charts struct {
	Bars     []bar
	BarsH    float64
	Baseline float64 // x of the 100% line
	ScaleMax float64 // the percentage at the bars' full length
	Line     *line
}

type bar struct {
	Row     AssessmentRow
	Y, W    float64
	TextY   float64
	HasBase bool
}

type line struct {
	W, H       float64
	Out, Last  template.HTMLAttr // points="…"
	Points     []linePoint
	Max        int64
	AxisY      float64
	X0, X1, Y0 float64
}

type linePoint struct {
	P           DynamicsPoint
	X, YOut     float64
	YLast       float64
	ShowLabel   bool
	LabelAnchor string
}

// chartsOf lays out the assessment bars (percentage of the baseline, the baseline drawn at
// 100%) and the dynamics line chart.
func chartsOf(p *Page) charts {
	var c charts
	c.ScaleMax = 150
	for _, a := range p.Assessments {
		if a.Percentage != nil && *a.Percentage > c.ScaleMax {
			c.ScaleMax = *a.Percentage
		}
	}
	c.Baseline = 100 / c.ScaleMax * barWidth
	for i, a := range p.Assessments {
		b := bar{Row: a, Y: float64(i) * (barHeight + barGap)}
		b.TextY = b.Y + barHeight*0.7
		if a.Percentage != nil {
			b.HasBase = true
			b.W = *a.Percentage / c.ScaleMax * barWidth
		}
		c.Bars = append(c.Bars, b)
	}
	c.BarsH = float64(len(p.Assessments))*(barHeight+barGap) + 4
	if len(p.Dynamics) > 0 {
		c.Line = lineOf(p.Dynamics)
	}
	return c
}

func lineOf(pts []DynamicsPoint) *line {
	l := &line{W: lineWidth + 2*linePad, H: lineHeight + 2*linePad, X0: linePad, X1: linePad + lineWidth, Y0: linePad + lineHeight}
	for _, p := range pts {
		l.Max = max(l.Max, p.OutAtWork, p.LastYearSame)
	}
	top := float64(max(l.Max, 1))
	var out, last []string
	for i, p := range pts {
		x := linePad
		if len(pts) > 1 {
			x += float64(i) / float64(len(pts)-1) * lineWidth
		}
		lp := linePoint{P: p, X: x,
			YOut:      linePad + lineHeight - float64(p.OutAtWork)/top*lineHeight,
			YLast:     linePad + lineHeight - float64(p.LastYearSame)/top*lineHeight,
			ShowLabel: i == 0 || i == len(pts)-1 || i%3 == 0, LabelAnchor: "middle"}
		if i == 0 {
			lp.LabelAnchor = "start"
		} else if i == len(pts)-1 {
			lp.LabelAnchor = "end"
		}
		l.Points = append(l.Points, lp)
		out = append(out, fmt.Sprintf("%.1f,%.1f", lp.X, lp.YOut))
		last = append(last, fmt.Sprintf("%.1f,%.1f", lp.X, lp.YLast))
	}
	l.Out = template.HTMLAttr(`points="` + strings.Join(out, " ") + `"`)
	l.Last = template.HTMLAttr(`points="` + strings.Join(last, " ") + `"`)
	l.AxisY = linePad
	return l
}

var funcs = template.FuncMap{
	"pct": func(p *float64) string {
		if p == nil {
			return "–"
		}
		return fmt.Sprintf("%.1f%%", *p)
	},
	"raw": func(p *float64) string {
		if p == nil {
			return ""
		}
		return fmt.Sprintf("%.1f", *p)
	},
	"num": func(p *int64) string {
		if p == nil {
			return ""
		}
		return fmt.Sprint(*p)
	},
	"f":   func(v float64) string { return fmt.Sprintf("%.1f", v) },
	"add": func(a, b float64) float64 { return a + b },
	"sub": func(a, b float64) float64 { return a - b },
}
