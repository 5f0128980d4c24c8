package kube

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/embedtoken/embedtoken/cmd"
)

// runInject rewrites Kubernetes YAML to add the sidecar of one API to every
// pod template in it (see podinject.go). Other documents are copied as they
// are, byte for byte, so injecting twice equals injecting once.
func runInject(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cmd.NewFlags("embedtoken-kube", "inject", "inject --config PATH --api NAME [-f FILE|-] [--image IMG] [--config-map NAME]", stderr)
	var configs cmd.StringList
	fs.Var(&configs, "config", "the catalog: a file or folder (repeatable); sidecar blocks are read from sidecars/ beside it")
	api := fs.String("api", "", "the API whose sidecar is injected (declared in the catalog)")
	file := fs.String("f", "-", "the YAML to rewrite; - reads standard input")
	image := fs.String("image", defaultImage(), "the embedtoken image")
	cm := fs.String("config-map", "embedtoken", "the ConfigMap holding the HCL files (no private keys)")
	if err := cmd.ParseFlags(fs, args, 0); err != nil {
		return err
	}
	if *api == "" {
		return cmd.UsageError("--api is required", "name the API whose sidecar to add, e.g. --api orders")
	}
	pi, err := injectorFor(configs, *api, *image, *cm, stderr)
	if err != nil {
		return err
	}
	var in []byte
	if *file == "-" {
		in, err = io.ReadAll(os.Stdin)
	} else {
		in, err = os.ReadFile(*file)
	}
	if err != nil {
		return cmd.UsageError("read "+*file+": "+err.Error(), "")
	}
	out, warnings, err := pi.injectYAML(in)
	for _, w := range warnings {
		fmt.Fprintf(stderr, "warning: %s\n", w)
	}
	if err != nil {
		return err
	}
	_, err = stdout.Write(out)
	return err
}

// defaultImage is the image of this build's version.
func defaultImage() string { return "embedtoken:" + cmd.Version }

// injectYAML rewrites every document of a multi-document YAML stream.
func (pi *podInjector) injectYAML(in []byte) ([]byte, []string, error) {
	docs := splitYAML(in)
	var out bytes.Buffer
	var warnings []string
	for i, doc := range docs {
		if i > 0 {
			out.WriteString("---\n")
		}
		res, w, err := pi.injectDoc(doc)
		warnings = append(warnings, w...)
		if err != nil {
			return nil, warnings, fmt.Errorf("document %d: %w", i+1, err)
		}
		out.Write(res)
	}
	return out.Bytes(), warnings, nil
}

// injectDoc rewrites one document; it returns doc itself when nothing
// changes.
func (pi *podInjector) injectDoc(doc []byte) ([]byte, []string, error) {
	var raw any
	if err := yaml.Unmarshal(doc, &raw); err != nil {
		return nil, nil, fmt.Errorf("not YAML: %v", err)
	}
	if raw == nil {
		return doc, nil, nil
	}
	v, err := normalize(raw)
	if err != nil {
		return nil, nil, fmt.Errorf("not a Kubernetes object: %v", err)
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, nil, fmt.Errorf("not a Kubernetes object (a %T)", v)
	}
	changed, warnings, err := pi.injectObject(obj)
	if err != nil || !changed {
		return doc, warnings, err
	}
	var b bytes.Buffer
	b.Write(leadingComments(doc))
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(obj); err != nil {
		return nil, warnings, err
	}
	return b.Bytes(), warnings, enc.Close()
}

// injectObject injects into obj (or the items of a List) in place.
func (pi *podInjector) injectObject(obj map[string]any) (bool, []string, error) {
	kind, _ := obj["kind"].(string)
	name, _ := nestedString(obj, "metadata", "name")
	where := kind + " " + name
	if kind == "List" {
		items, ok := listOf(obj, "items")
		if !ok {
			return false, nil, fmt.Errorf("%s: items is not a list", where)
		}
		var changed bool
		var warnings []string
		for _, it := range items {
			m, ok := it.(map[string]any)
			if !ok {
				return false, warnings, fmt.Errorf("%s: an item is not an object", where)
			}
			c, w, err := pi.injectObject(m)
			warnings = append(warnings, w...)
			if err != nil {
				return false, warnings, err
			}
			changed = changed || c
		}
		return changed, warnings, nil
	}
	if kind == "Service" {
		return false, pi.serviceWarnings(where, obj), nil
	}
	spec, err := podSpecOf(obj)
	if err != nil || spec == nil {
		return false, nil, err
	}
	p, err := pi.plan(spec)
	if err != nil {
		return false, nil, fmt.Errorf("%s: %w", where, err)
	}
	if !p.changes() {
		return false, nil, nil
	}
	warnings := pi.portWarnings(where, spec)
	pi.apply(spec, p)
	return true, warnings, nil
}

// serviceWarnings flags a Service that targets the app's own port rather
// than the sidecar's.
func (pi *podInjector) serviceWarnings(where string, svc map[string]any) []string {
	_, up, _ := strings.Cut(pi.Upstream, ":")
	spec, _ := svc["spec"].(map[string]any)
	ports, _ := listOf(spec, "ports")
	var out []string
	for _, p := range ports {
		pm, _ := p.(map[string]any)
		target := pm["targetPort"]
		if target == nil {
			target = pm["port"]
		}
		if fmt.Sprint(target) == up {
			out = append(out, fmt.Sprintf("%s targets port %s, the app's own port: target the sidecar's port %d (or its name \"embedtoken\")", where, up, pi.Port))
		}
	}
	return out
}

func nestedString(m map[string]any, keys ...string) (string, bool) {
	var cur any = m
	for _, k := range keys {
		cm, ok := cur.(map[string]any)
		if !ok {
			return "", false
		}
		cur = cm[k]
	}
	s, ok := cur.(string)
	return s, ok
}

// splitYAML splits a YAML stream at its "---" document separators, keeping
// each document's bytes.
func splitYAML(in []byte) [][]byte {
	var docs [][]byte
	var cur bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(in))
	sc.Buffer(make([]byte, 64*1024), 16<<20)
	first := true
	for sc.Scan() {
		line := sc.Text()
		if line == "---" || strings.HasPrefix(line, "--- ") || strings.HasPrefix(line, "---\t") {
			if !first || cur.Len() > 0 {
				docs = append(docs, append([]byte(nil), cur.Bytes()...))
			}
			cur.Reset()
			first = false
			continue
		}
		first = false
		cur.WriteString(line)
		cur.WriteByte('\n')
	}
	if cur.Len() > 0 || len(docs) == 0 {
		docs = append(docs, cur.Bytes())
	}
	return docs
}

// leadingComments are the comment lines that open doc, kept when the
// document is rewritten.
func leadingComments(doc []byte) []byte {
	n := 0
	for rest := doc; len(rest) > 0; {
		line, next, _ := bytes.Cut(rest, []byte("\n"))
		if t := bytes.TrimSpace(line); len(t) > 0 && t[0] != '#' {
			break
		}
		n += len(line) + 1
		rest = next
	}
	return doc[:min(n, len(doc))]
}
