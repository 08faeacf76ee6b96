package main

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// progress shows how far a long operation is: a bar redrawn in place on a terminal, or a line
// every 10% (and at the end) when the output is a file or a pipe.
type progress struct {
	w           io.Writer
	label       string
	total       int64
	interactive bool
	start       time.Time
	lastDraw    time.Time
	lastDecile  int64
	done        int64
	unit        string
}

// newProgress starts a progress display for total units (0 when unknown).
func newProgress(w io.Writer, interactive bool, label string, total int64, unit string) *progress {
	return &progress{w: w, label: label, total: total, interactive: interactive, start: time.Now(), lastDecile: -1, unit: unit}
}

// Set records that done units are finished, with an optional note (such as rows sent).
func (p *progress) Set(done int64, note string) {
	p.done = done
	now := time.Now()
	if p.interactive {
		if now.Sub(p.lastDraw) < 100*time.Millisecond && done < p.total {
			return
		}
		p.lastDraw = now
		fmt.Fprintf(p.w, "\r%s", p.line(note))
		return
	}
	if p.total <= 0 {
		return
	}
	decile := done * 10 / p.total
	if decile > p.lastDecile {
		p.lastDecile = decile
		fmt.Fprintln(p.w, p.line(note))
	}
}

// Finish ends the display.
func (p *progress) Finish(note string) {
	if p.interactive {
		fmt.Fprintf(p.w, "\r%s\n", p.line(note))
		return
	}
	fmt.Fprintln(p.w, p.line(note))
}

func (p *progress) line(note string) string {
	elapsed := time.Since(p.start).Round(100 * time.Millisecond)
	if p.total <= 0 {
		return fmt.Sprintf("%s %d %s  %s  %s", p.label, p.done, p.unit, elapsed, note)
	}
	frac := float64(p.done) / float64(p.total)
	frac = min(max(frac, 0), 1)
	const width = 30
	filled := int(frac * width)
	return fmt.Sprintf("%s [%s%s] %5.1f%%  %s  %s", p.label, strings.Repeat("=", filled), strings.Repeat(" ", width-filled), frac*100, elapsed, note)
}
