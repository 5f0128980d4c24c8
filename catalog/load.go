package catalog

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
)

// maxConfigFileBytes bounds one configuration file, and a file() read.
const maxConfigFileBytes = 1 << 20

// Load reads the configuration at paths from fsys: each path is a file, or a
// folder whose *.hcl files (not its subfolders) are read in name order. It
// returns the validated catalog, the parser (so that callers can render
// source snippets) and every diagnostic, warnings included. The catalog is
// nil when diags has errors.
//
// Each file is decoded on its own, so that file("...") and key paths resolve
// relative to the file that names them; the results are then merged, and a
// block that may appear once is an error the second time, wherever it is.
func Load(fsys fs.FS, paths []string, opts *Options) (*Catalog, *hclparse.Parser, hcl.Diagnostics) {
	parser := hclparse.NewParser()
	var diags hcl.Diagnostics
	files, ds := listFiles(fsys, paths)
	diags = append(diags, ds...)
	if diags.HasErrors() {
		return nil, parser, diags
	}
	var decoded []*decodedFile
	for _, name := range files {
		src, err := readLimited(fsys, name)
		if err != nil {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Unreadable configuration file",
				Detail:   fmt.Sprintf("Could not read %s: %s.", name, errText(err)),
				Subject:  &hcl.Range{Filename: name, Start: hcl.InitialPos, End: hcl.InitialPos},
			})
			continue
		}
		f, ds := parser.ParseHCL(src, name)
		diags = append(diags, ds...)
		if ds.HasErrors() {
			continue
		}
		decoded = append(decoded, &decodedFile{name: name, dir: path.Dir(name), body: f.Body})
	}
	// Syntax errors cascade: report them alone (STYLE 12).
	if diags.HasErrors() {
		sortDiagnostics(diags, files)
		return nil, parser, diags
	}
	// Decoding errors (an unknown attribute, a wrong type) do not stop the
	// semantic checks: all problems are reported at once. A check that
	// would repeat a decoding error at the same place is dropped.
	l := &loader{fsys: fsys, opts: opts}
	for _, df := range decoded {
		diags = append(diags, gohcl.DecodeBody(df.body, df.ctx(l), &df.raw)...)
	}
	cat, ds := l.build(decoded)
	diags = append(diags, dropRepeats(diags, ds)...)
	diags = dropCascades(diags)
	sortDiagnostics(diags, files)
	if diags.HasErrors() {
		return nil, parser, diags
	}
	cat.Files = files
	return cat, parser, diags
}

// dropRepeats drops the errors of later that sit where an error of
// earlier already points.
func dropRepeats(earlier, later hcl.Diagnostics) hcl.Diagnostics {
	at := map[hcl.Pos]string{}
	for _, d := range earlier {
		if d.Severity == hcl.DiagError && d.Subject != nil {
			at[d.Subject.Start] = d.Subject.Filename
		}
	}
	var out hcl.Diagnostics
	for _, d := range later {
		if d.Severity == hcl.DiagError && d.Subject != nil && at[d.Subject.Start] == d.Subject.Filename {
			continue
		}
		out = append(out, d)
	}
	return out
}

// dropCascades drops HCL's "value must be known" errors that follow a
// failed function call at the same place: the first error says it all.
func dropCascades(diags hcl.Diagnostics) hcl.Diagnostics {
	var out hcl.Diagnostics
	seen := map[hcl.Pos]string{}
	for _, d := range diags {
		if d.Subject != nil && d.Summary == "Unsuitable value type" && seen[d.Subject.Start] == d.Subject.Filename {
			continue
		}
		if d.Subject != nil && d.Severity == hcl.DiagError {
			seen[d.Subject.Start] = d.Subject.Filename
		}
		out = append(out, d)
	}
	return out
}

// sortDiagnostics orders diagnostics by file (in reading order), then
// position; those without a position come first.
func sortDiagnostics(diags hcl.Diagnostics, files []string) {
	order := map[string]int{}
	for i, f := range files {
		order[f] = i + 1
	}
	key := func(d *hcl.Diagnostic) (int, int, int) {
		if d.Subject == nil {
			return 0, 0, 0
		}
		return order[d.Subject.Filename], d.Subject.Start.Line, d.Subject.Start.Column
	}
	sort.SliceStable(diags, func(i, j int) bool {
		fi, li, ci := key(diags[i])
		fj, lj, cj := key(diags[j])
		if fi != fj {
			return fi < fj
		}
		if li != lj {
			return li < lj
		}
		return ci < cj
	})
}

// LoadFiles is Load over the operating system's files; paths may be
// absolute or relative to the working directory.
func LoadFiles(paths []string, opts *Options) (*Catalog, *hclparse.Parser, hcl.Diagnostics) {
	return Load(osFS{}, paths, opts)
}

type decodedFile struct {
	name string
	dir  string
	body hcl.Body
	raw  rawFile

	evalCtx *hcl.EvalContext
}

type loader struct {
	fsys fs.FS
	opts *Options
}

// listFiles expands paths into the files to read, in order, without
// duplicates.
func listFiles(fsys fs.FS, paths []string) ([]string, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	var out []string
	seen := map[string]bool{}
	add := func(name string) {
		if !seen[name] {
			seen[name] = true
			out = append(out, name)
		}
	}
	for _, p := range paths {
		p = cleanPath(p)
		st, err := fs.Stat(fsys, p)
		if err != nil {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Configuration path not found",
				Detail:   fmt.Sprintf("Could not read --config %s: %s. Pass a .hcl file or a folder of them.", p, errText(err)),
			})
			continue
		}
		if !st.IsDir() {
			add(p)
			continue
		}
		entries, err := fs.ReadDir(fsys, p)
		if err != nil {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Unreadable configuration folder",
				Detail:   fmt.Sprintf("Could not list %s: %s.", p, errText(err)),
			})
			continue
		}
		var names []string
		for _, e := range entries {
			if e.IsDir() || !strings.HasSuffix(e.Name(), ".hcl") || strings.HasPrefix(e.Name(), ".") {
				continue
			}
			names = append(names, e.Name())
		}
		sort.Strings(names)
		if len(names) == 0 {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "No configuration files",
				Detail:   fmt.Sprintf("The folder %s holds no *.hcl files (subfolders are not read).", p),
			})
		}
		for _, n := range names {
			add(joinPath(p, n))
		}
	}
	return out, diags
}

func readLimited(fsys fs.FS, name string) ([]byte, error) {
	st, err := fs.Stat(fsys, name)
	if err != nil {
		return nil, err
	}
	if st.Size() > maxConfigFileBytes {
		return nil, fmt.Errorf("larger than %d bytes", maxConfigFileBytes)
	}
	return fs.ReadFile(fsys, name)
}

// evalContext offers env() and file() to expressions of a file in dir.
func (l *loader) evalContext(dir string) *hcl.EvalContext {
	lookup := l.opts.lookupEnv()
	env := function.New(&function.Spec{
		Description: "Reads an environment variable; with a second argument, a fallback for an unset variable.",
		Params:      []function.Parameter{{Name: "name", Type: cty.String}},
		VarParam:    &function.Parameter{Name: "fallback", Type: cty.String},
		Type:        function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			if len(args) > 2 {
				return cty.NilVal, errors.New("env takes a name and at most one fallback")
			}
			name := args[0].AsString()
			if v, ok := lookup(name); ok {
				return cty.StringVal(v), nil
			}
			if len(args) == 2 {
				return args[1], nil
			}
			return cty.NilVal, fmt.Errorf("environment variable %s is not set; set it, or give a fallback: env(%q, \"...\")", name, name)
		},
	})
	file := function.New(&function.Spec{
		Description: "Reads a file, relative to the configuration file, trimming one trailing newline.",
		Params:      []function.Parameter{{Name: "path", Type: cty.String}},
		Type:        function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			p := resolvePath(dir, args[0].AsString())
			b, err := readLimited(l.fsys, p)
			if err != nil {
				return cty.NilVal, fmt.Errorf("read %s: %s", p, errText(err))
			}
			return cty.StringVal(strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")), nil
		},
	})
	return &hcl.EvalContext{Functions: map[string]function.Function{"env": env, "file": file}}
}

// resolvePath makes p relative to dir unless it is absolute.
func resolvePath(dir, p string) string {
	if p == "" || path.IsAbs(p) {
		return p
	}
	return joinPath(dir, p)
}

func joinPath(dir, name string) string {
	if dir == "." || dir == "" {
		return path.Clean(name)
	}
	return path.Join(dir, name)
}

func cleanPath(p string) string {
	if p == "" {
		return "."
	}
	c := path.Clean(p)
	return c
}

// errText is err without the path prefix of *fs.PathError, which the
// diagnostics already name.
func errText(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// osFS reads the operating system's files by the names given, absolute or
// relative to the working directory (os.DirFS would refuse absolute names).
type osFS struct{}

func (osFS) Open(name string) (fs.File, error)          { return os.Open(name) }
func (osFS) Stat(name string) (fs.FileInfo, error)      { return os.Stat(name) }
func (osFS) ReadFile(name string) ([]byte, error)       { return os.ReadFile(name) }
func (osFS) ReadDir(name string) ([]fs.DirEntry, error) { return os.ReadDir(name) }
