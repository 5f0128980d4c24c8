package cmd

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
)

// writeDiagnostics renders diags: HCL's snippet writer on a terminal, else
// one line per diagnostic, "path:line:col: error: Summary; Detail", which
// editors and CI annotators can jump to.
func writeDiagnostics(w io.Writer, parser *hclparse.Parser, diags hcl.Diagnostics) {
	if len(diags) == 0 {
		return
	}
	if f, ok := w.(*os.File); ok && isTerminal(f) && parser != nil {
		width := 100
		dw := hcl.NewDiagnosticTextWriter(w, parser.Files(), uint(width), true)
		_ = dw.WriteDiagnostics(diags)
		return
	}
	for _, d := range diags {
		fmt.Fprintln(w, diagLine(d))
	}
}

// diagLine formats one diagnostic on one line.
func diagLine(d *hcl.Diagnostic) string {
	sev := "error"
	if d.Severity == hcl.DiagWarning {
		sev = "warning"
	}
	var b strings.Builder
	if d.Subject != nil {
		fmt.Fprintf(&b, "%s:%d:%d: ", d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column)
	}
	b.WriteString(sev)
	b.WriteString(": ")
	b.WriteString(d.Summary)
	if d.Detail != "" {
		b.WriteString("; ")
		b.WriteString(strings.Join(strings.Fields(d.Detail), " "))
	}
	return b.String()
}

// isTerminal reports whether f is a character device (a TTY).
func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// isError reports whether d is an error (not a warning).
func isError(d *hcl.Diagnostic) bool { return d.Severity == hcl.DiagError }

// errorsOnly keeps the error diagnostics: for commands whose job is not to
// review a configuration (inject), whose warnings are check's to report.
func errorsOnly(diags hcl.Diagnostics) hcl.Diagnostics {
	var out hcl.Diagnostics
	for _, d := range diags {
		if d.Severity == hcl.DiagError {
			out = append(out, d)
		}
	}
	return out
}
