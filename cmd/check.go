package cmd

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/hashicorp/hcl/v2"

	"github.com/embedtoken/embedtoken/catalog"
)

func runCheck(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("check", "check --config PATH [--config PATH]... [--format text|json] [--issuer NAME]", stderr)
	var configs stringList
	fs.Var(&configs, "config", "configuration file or folder (repeatable)")
	format := fs.String("format", "text", "output format: text or json")
	issuer := fs.String("issuer", "", "also check the limits of this issuer: "+strings.Join(issuerNames(), ", "))
	if err := parseFlags(fs, args, 0); err != nil {
		return err
	}
	if *format != "text" && *format != "json" {
		return &usageError{msg: fmt.Sprintf("unknown --format %q", *format), hint: "use --format text or --format json"}
	}
	if _, ok := issuerProfiles[*issuer]; *issuer != "" && !ok {
		return &usageError{msg: fmt.Sprintf("unknown --issuer %q", *issuer), hint: "use one of " + strings.Join(issuerNames(), ", ")}
	}
	if len(configs) == 0 {
		return &usageError{msg: "--config is required", hint: "pass --config hcl/ (a file or a folder; repeatable)"}
	}
	cat, parser, diags := catalog.LoadFiles(configs, loadOptions(catalog.KeysCheck, 0))
	if diags.HasErrors() {
		if *format == "json" {
			_ = writeJSON(stdout, checkReport{OK: false, Diagnostics: jsonDiags(diags)})
		}
		writeDiagnostics(stderr, parser, diags)
		return &configError{msg: fmt.Sprintf("configuration has %d error(s)", countErrors(diags))}
	}
	rep := newCheckReport(cat, diags)
	if *issuer != "" {
		rep.Issuer = issuerReport(cat, *issuer, cat.Sizes())
		rep.OK = rep.OK && len(rep.Issuer.Warnings) == 0
	}
	if *format == "json" {
		if err := writeJSON(stdout, rep); err != nil {
			return err
		}
	} else {
		writeCheckText(stdout, cat, rep, diags)
	}
	if !rep.OK {
		return errCheckFailed
	}
	return nil
}

// checkReport is the JSON form of check's output.
type checkReport struct {
	OK          bool             `json:"ok"`
	Files       []string         `json:"files,omitempty"`
	APIs        []checkAPI       `json:"apis,omitempty"`
	CallGraph   []checkNode      `json:"call_graph,omitempty"`
	Diagnostics []jsonDiagnostic `json:"diagnostics"`
	Sizes       *checkSizes      `json:"sizes,omitempty"`
	Issuer      *checkIssuer     `json:"issuer,omitempty"`
}

type checkAPI struct {
	Name            string   `json:"name"`
	Audience        string   `json:"audience"`
	Scopes          []string `json:"scopes"`
	Claims          []string `json:"claims"`
	Lifetime        string   `json:"lifetime"`
	LifetimeSeconds int64    `json:"lifetime_seconds"`
	Calls           []string `json:"calls"`
	Exposed         bool     `json:"exposed"`
}

type checkNode struct {
	API   string      `json:"api"`
	Calls []checkNode `json:"calls,omitempty"`
}

type checkSizes struct {
	Algorithm      string         `json:"algorithm"`
	KeyID          string         `json:"kid"`
	APIs           []checkAPISize `json:"apis"`
	EmbeddedBytes  int            `json:"embedded_bytes"`
	Budget         int            `json:"max_embedded_bytes"`
	OuterBaseBytes int            `json:"outer_base_bytes"`
	OuterBytes     int            `json:"outer_bytes"`
	OverBudget     bool           `json:"over_budget"`
	Assumptions    string         `json:"assumptions"`
}

type checkAPISize struct {
	Name    string `json:"name"`
	Bytes   int    `json:"bytes"`
	Exposed bool   `json:"exposed"`
}

type jsonDiagnostic struct {
	Severity string `json:"severity"`
	File     string `json:"file,omitempty"`
	Line     int    `json:"line,omitempty"`
	Column   int    `json:"column,omitempty"`
	Summary  string `json:"summary"`
	Detail   string `json:"detail,omitempty"`
}

const sizeAssumptions = "every scope granted; every declared claim present as a %d-character string; sub and client_id of %d characters; the active key's algorithm and size (RSA %d bits when no key is loaded)"

func newCheckReport(cat *catalog.Catalog, diags hcl.Diagnostics) checkReport {
	rep := checkReport{Files: cat.Files, Diagnostics: jsonDiags(diags)}
	for _, a := range cat.APIs {
		rep.APIs = append(rep.APIs, checkAPI{
			Name: a.Name, Audience: a.Audience, Scopes: nonNil(a.Scopes), Claims: nonNil(a.Claims),
			Lifetime: a.Lifetime.String(), LifetimeSeconds: int64(a.Lifetime.Seconds()), Calls: nonNil(a.Calls), Exposed: a.Exposed,
		})
	}
	var node func(name string) checkNode
	node = func(name string) checkNode {
		n := checkNode{API: name}
		for _, c := range cat.API(name).Calls {
			n.Calls = append(n.Calls, node(c))
		}
		return n
	}
	for _, a := range cat.Roots() {
		rep.CallGraph = append(rep.CallGraph, node(a.Name))
	}
	s := cat.Sizes()
	sizes := &checkSizes{
		Algorithm: s.Algorithm, KeyID: s.KeyID, EmbeddedBytes: s.EmbeddedBytes, Budget: s.Budget,
		OuterBaseBytes: cat.Minter.OuterBaseBytes, OuterBytes: s.OuterBytes, OverBudget: s.OverBudget(),
		Assumptions: fmt.Sprintf(sizeAssumptions, catalog.AssumedClaimBytes, catalog.AssumedSubjectBytes, catalog.AssumedRSABits),
	}
	for _, a := range s.APIs {
		sizes.APIs = append(sizes.APIs, checkAPISize{Name: a.Name, Bytes: a.Bytes, Exposed: a.Exposed})
	}
	rep.Sizes = sizes
	rep.OK = !s.OverBudget()
	return rep
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func jsonDiags(diags hcl.Diagnostics) []jsonDiagnostic {
	out := []jsonDiagnostic{}
	for _, d := range diags {
		j := jsonDiagnostic{Severity: "error", Summary: d.Summary, Detail: strings.Join(strings.Fields(d.Detail), " ")}
		if d.Severity == hcl.DiagWarning {
			j.Severity = "warning"
		}
		if d.Subject != nil {
			j.File, j.Line, j.Column = d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column
		}
		out = append(out, j)
	}
	return out
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func writeCheckText(w io.Writer, cat *catalog.Catalog, rep checkReport, diags hcl.Diagnostics) {
	fmt.Fprintf(w, "Configuration: %s\n", strings.Join(cat.Files, ", "))
	fmt.Fprintf(w, "Minter: %s (claim %q, %d signing key(s), active %q, mint_for %s)\n\n",
		cat.Minter.Issuer, cat.Minter.Claim, len(cat.Minter.SigningKeys), cat.Minter.ActiveKey, cat.Minter.MintFor)

	fmt.Fprintf(w, "APIs (%d)\n", len(cat.APIs))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  NAME\tAUDIENCE\tSCOPES\tCLAIMS\tLIFETIME\tCALLS\tEXPOSED")
	for _, a := range cat.APIs {
		exposed := "yes"
		if !a.Exposed {
			exposed = "no"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\t%s\n", a.Name, a.Audience, dash(a.Scopes, " "), dash(a.Claims, " "), a.Lifetime, dash(a.Calls, ", "), exposed)
	}
	tw.Flush()

	fmt.Fprintln(w, "\nCall graph (exposed APIs at the top level of the outer token)")
	for _, n := range rep.CallGraph {
		fmt.Fprintf(w, "  %s\n", n.API)
		writeTree(w, n.Calls, "  ")
	}

	s := rep.Sizes
	fmt.Fprintf(w, "\nToken sizes (worst case, %s %q; assumes %s)\n", s.Algorithm, s.KeyID,
		fmt.Sprintf(sizeAssumptions, catalog.AssumedClaimBytes, catalog.AssumedSubjectBytes, catalog.AssumedRSABits))
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "  API\tINNER JWS BYTES\tIN OUTER TOKEN\t")
	for _, a := range s.APIs {
		top := "nested only"
		if a.Exposed {
			top = "top level"
		}
		fmt.Fprintf(tw, "  %s\t%d\t%s\t\n", a.Name, a.Bytes, top)
	}
	tw.Flush()
	pct := 0
	if s.Budget > 0 {
		pct = s.EmbeddedBytes * 100 / s.Budget
	}
	fmt.Fprintf(w, "  embedded map: %d bytes of a %d-byte budget (%d%%)\n", s.EmbeddedBytes, s.Budget, pct)
	fmt.Fprintf(w, "  outer token:  %d bytes (%d assumed for the issuer's own part)\n", s.OuterBytes, s.OuterBaseBytes)
	for _, limit := range []struct {
		name  string
		bytes int
	}{{"nginx's default 8 KiB header line", 8192 - len("Authorization: Bearer ")}, {"Node.js's 16 KiB header block", 16384}} {
		verdict := "fits"
		if s.OuterBytes > limit.bytes {
			verdict = "DOES NOT FIT"
		}
		fmt.Fprintf(w, "  against %s: %s\n", limit.name, verdict)
	}

	var warns hcl.Diagnostics
	for _, d := range diags {
		if d.Severity == hcl.DiagWarning {
			warns = append(warns, d)
		}
	}
	fmt.Fprintf(w, "\nWarnings (%d)\n", len(warns))
	for _, d := range warns {
		fmt.Fprintf(w, "  %s\n", diagLine(d))
	}
	if rep.Issuer != nil {
		writeIssuerText(w, rep.Issuer)
	}
	if s.OverBudget {
		fmt.Fprintf(w, "\nFAIL: the embedded map may reach %d bytes, over max_embedded_bytes = %d. Declare fewer claims or scopes, mark internal APIs exposed = false, or use EdDSA keys.\n", s.EmbeddedBytes, s.Budget)
		return
	}
	if rep.Issuer != nil && len(rep.Issuer.Warnings) > 0 {
		fmt.Fprintf(w, "\nFAIL: the catalog breaks %d limit(s) of %s.\n", len(rep.Issuer.Warnings), rep.Issuer.Name)
		return
	}
	fmt.Fprintln(w, "\nOK")
}

func writeTree(w io.Writer, nodes []checkNode, indent string) {
	for i, n := range nodes {
		branch, next := "├── ", "│   "
		if i == len(nodes)-1 {
			branch, next = "└── ", "    "
		}
		fmt.Fprintf(w, "%s%s%s\n", indent, branch, n.API)
		writeTree(w, n.Calls, indent+next)
	}
}

func dash(list []string, sep string) string {
	if len(list) == 0 {
		return "-"
	}
	return strings.Join(list, sep)
}
