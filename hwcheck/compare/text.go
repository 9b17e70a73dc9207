package compare

import (
	"fmt"
	"io"
	"strings"

	"github.com/ftvs/ftvs/hwcheck/policy"
)

// maxQuietUnverified is how many non-blocking unverified lines a category
// shows before summing up the rest (a ghw snapshot has ~80 unknown PCI
// driver bindings); --json lists them all.
const maxQuietUnverified = 5

// WriteText writes the report for people: differences grouped by
// category, blocking ones first, and one verdict line last.
func (r Report) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "A: %s\nB: %s\n", r.A, r.B)
	for _, cat := range policy.Categories() {
		var lines []string
		quiet := 0
		for _, blocking := range []bool{true, false} {
			for _, d := range r.Differences {
				if d.Category != cat || d.Blocking != blocking {
					continue
				}
				if !d.Blocking && d.Severity == Unverified {
					if quiet++; quiet > maxQuietUnverified {
						continue
					}
				}
				mark := " "
				if d.Blocking {
					mark = "!"
				}
				line := fmt.Sprintf("  %s %-10s %s: %s vs %s", mark, d.Severity, d.Path, d.A, d.B)
				if d.Reason != "" {
					line += " (" + d.Reason + ")"
				}
				lines = append(lines, line)
			}
		}
		if quiet > maxQuietUnverified {
			lines = append(lines, fmt.Sprintf("    ... %d more non-blocking unverified (see --json)", quiet-maxQuietUnverified))
		}
		if len(lines) > 0 {
			fmt.Fprintf(&b, "%s:\n%s\n", cat, strings.Join(lines, "\n"))
		}
	}
	b.WriteString(r.VerdictLine() + "\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// VerdictLine is the one-line summary: "verdict: match (...)".
func (r Report) VerdictLine() string {
	fatal, _ := r.Count(Fatal)
	uvBlock, uvOK := r.Count(Unverified)
	_, warn := r.Count(Warning)
	_, info := r.Count(Info)
	return fmt.Sprintf("verdict: %s (%d fatal, %d unverified blocking, %d unverified non-blocking, %d warning, %d info)",
		strings.ToUpper(string(r.Verdict())), fatal, uvBlock, uvOK, warn, info)
}
