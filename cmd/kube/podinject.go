package kube

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"github.com/embedtoken/embedtoken/catalog"
	"github.com/embedtoken/embedtoken/cmd"
)

// Pod sidecar injection, shared by `embedtoken-kube inject` (YAML files) and
// `embedtoken-kube injector` (the admission webhook). It works on generic
// JSON-shaped values (map[string]any, []any, string, int64, float64, bool),
// so that no Kubernetes type is linked into the binary and every field it
// does not know is kept as it is.

const (
	// sidecarName is the injected container's name: one per pod.
	sidecarName = "embedtoken"
	// configVolume is the injected volume: the ConfigMap holding the HCL.
	configVolume = "embedtoken-config"
	// configMount is where the HCL is mounted in the sidecar container.
	configMount = "/etc/embedtoken"
	// apiAnnotation opts a pod into injection by the webhook.
	apiAnnotation = "embedtoken.dev/api"
	// imageUID is the non-root user of the image (Dockerfile: USER 65532).
	imageUID = 65532
	// Defaults when the API has no sidecar block in the configuration.
	defaultSidecarPort = 8441
	defaultAdminPort   = 9901
)

// podInjector is what one API's sidecar looks like in a pod.
type podInjector struct {
	API       string
	Image     string
	ConfigMap string
	// Items maps ConfigMap keys to paths under configMount: the catalog
	// files and the API's sidecar file (sidecars/NAME.hcl).
	Items       [][2]string
	SidecarPath string // under configMount
	Port        int    // the sidecar's listen port (the pod's public port)
	AdminPort   int    // /healthz, /readyz, /metrics
	Upstream    string // host:port of the service, for the port warnings
}

// injectorFor reads the catalog at paths and the sidecar block of api from
// a sidecars/ folder beside the catalog's files (the layout of hcl/), and
// returns how its sidecar is injected. Warnings go to warn.
func injectorFor(paths []string, api, image, configMap string, warn io.Writer) (*podInjector, error) {
	cat, err := cmd.LoadCatalog(paths, catalog.KeysSkip, warn)
	if err != nil {
		return nil, err
	}
	if cat.Sidecar != nil {
		return nil, cmd.UsageError("--config holds a sidecar block (api "+strconv.Quote(cat.Sidecar.API)+")",
			"pass the catalog folder (hcl/); sidecar blocks are read from its sidecars/ folder")
	}
	if cat.API(api) == nil {
		return nil, cmd.ConfigError(fmt.Sprintf("api %q is not declared in the catalog (%s)", api, strings.Join(sortedAPIs(cat), ", ")))
	}
	pi := &podInjector{API: api, Image: image, ConfigMap: configMap, Port: defaultSidecarPort, AdminPort: defaultAdminPort,
		Upstream: "127.0.0.1:8080"}
	seen := map[string]string{}
	addItem := func(file, path string) error {
		key := filepath.Base(file)
		if prev, dup := seen[key]; dup {
			return cmd.ConfigError(fmt.Sprintf("%s and %s share the ConfigMap key %q: rename one", prev, file, key))
		}
		seen[key] = file
		pi.Items = append(pi.Items, [2]string{key, path})
		return nil
	}
	for _, f := range cat.Files {
		if err := addItem(f, filepath.Base(f)); err != nil {
			return nil, err
		}
	}
	file, sc, err := findSidecarBlock(paths, cat.Files, api)
	if err != nil {
		return nil, err
	}
	if sc == nil {
		fmt.Fprintf(warn, "warning: no sidecar block for api %q under sidecars/ beside --config: using listen :%d, admin_listen :%d; the ConfigMap must hold %s.hcl with that sidecar block\n",
			api, defaultSidecarPort, defaultAdminPort, api)
		file = api + ".hcl"
	} else {
		if pi.Port, err = podPort("listen", sc.Listen); err != nil {
			return nil, cmd.ConfigError(fmt.Sprintf("%s: %s", file, err))
		}
		if sc.AdminListen == "" {
			return nil, cmd.ConfigError(file + ": admin_listen is off: the kubelet's probes need it (admin_listen = \":9901\")")
		}
		if pi.AdminPort, err = podPort("admin_listen", sc.AdminListen); err != nil {
			return nil, cmd.ConfigError(fmt.Sprintf("%s: %s", file, err))
		}
		if u := upstreamHostPort(sc.Upstream); u != "" {
			pi.Upstream = u
		}
	}
	pi.SidecarPath = "sidecars/" + filepath.Base(file)
	if err := addItem(file, pi.SidecarPath); err != nil {
		return nil, err
	}
	return pi, nil
}

// findSidecarBlock loads, with the catalog, each sidecars/*.hcl beside the
// catalog's files and returns the one whose sidecar block is api's.
func findSidecarBlock(paths, catFiles []string, api string) (string, *catalog.Sidecar, error) {
	dirs := map[string]bool{}
	for _, f := range catFiles {
		dirs[filepath.Join(filepath.Dir(f), "sidecars")] = true
	}
	var files []string
	for d := range dirs {
		m, _ := filepath.Glob(filepath.Join(d, "*.hcl"))
		files = append(files, m...)
	}
	sort.Strings(files)
	var foundFile string
	var found *catalog.Sidecar
	for _, f := range files {
		cat, _, diags := catalog.LoadFiles(append(append([]string{}, paths...), f), &catalog.Options{Keys: catalog.KeysSkip})
		if diags.HasErrors() || cat == nil || cat.Sidecar == nil {
			if strings.TrimSuffix(filepath.Base(f), ".hcl") == api {
				return "", nil, cmd.ConfigError(fmt.Sprintf("%s does not load with the catalog: run 'embedtoken check --config %s --config %s'", f, strings.Join(paths, " --config "), f))
			}
			continue
		}
		if cat.Sidecar.API != api {
			continue
		}
		if found != nil {
			return "", nil, cmd.ConfigError(fmt.Sprintf("%s and %s both hold a sidecar block for api %q", foundFile, f, api))
		}
		foundFile, found = f, cat.Sidecar
	}
	return foundFile, found, nil
}

// podPort is the port of a listen address the kubelet and the Service must
// reach on the pod's IP: loopback is refused.
func podPort(what, addr string) (int, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, fmt.Errorf("%s %q: %v", what, addr, err)
	}
	if ip := net.ParseIP(host); host == "localhost" || (ip != nil && ip.IsLoopback()) {
		return 0, fmt.Errorf("%s %q is loopback: in a pod it must listen on the pod's IP (%s = \":%s\")", what, addr, what, port)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("%s %q: bad port", what, addr)
	}
	return n, nil
}

// upstreamHostPort is host:port of an upstream URL, or "".
func upstreamHostPort(u string) string {
	rest, ok := strings.CutPrefix(u, "http://")
	if !ok {
		if rest, ok = strings.CutPrefix(u, "https://"); !ok {
			return ""
		}
	}
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		rest = rest[:i]
	}
	if _, _, err := net.SplitHostPort(rest); err != nil {
		if strings.HasPrefix(u, "https://") {
			return rest + ":443"
		}
		return rest + ":80"
	}
	return rest
}

func sortedAPIs(cat *catalog.Catalog) []string {
	out := make([]string, 0, len(cat.APIs))
	for _, a := range cat.APIs {
		out = append(out, a.Name)
	}
	sort.Strings(out)
	return out
}

// container is the native sidecar: an init container with restartPolicy
// Always, so it is started (and ready) before the app and outlives it.
func (pi *podInjector) container() map[string]any {
	probe := func(path string, period int) map[string]any {
		return map[string]any{
			"httpGet":          map[string]any{"path": path, "port": int64(pi.AdminPort)},
			"periodSeconds":    int64(period),
			"failureThreshold": int64(3),
		}
	}
	startup := probe("/healthz", 1)
	startup["failureThreshold"] = int64(30)
	return map[string]any{
		"name":          sidecarName,
		"image":         pi.Image,
		"args":          []any{"sidecar", "--config", configMount, "--config", configMount + "/" + pi.SidecarPath},
		"restartPolicy": "Always",
		"ports": []any{
			map[string]any{"name": "embedtoken", "containerPort": int64(pi.Port), "protocol": "TCP"},
			map[string]any{"name": "et-admin", "containerPort": int64(pi.AdminPort), "protocol": "TCP"},
		},
		"startupProbe":   startup,
		"readinessProbe": probe("/readyz", 5),
		"livenessProbe":  probe("/healthz", 10),
		"resources": map[string]any{
			"requests": map[string]any{"cpu": "10m", "memory": "32Mi"},
			"limits":   map[string]any{"memory": "256Mi"},
		},
		"securityContext": map[string]any{
			"runAsNonRoot":             true,
			"runAsUser":                int64(imageUID),
			"runAsGroup":               int64(imageUID),
			"readOnlyRootFilesystem":   true,
			"allowPrivilegeEscalation": false,
			"privileged":               false,
			"capabilities":             map[string]any{"drop": []any{"ALL"}},
			"seccompProfile":           map[string]any{"type": "RuntimeDefault"},
		},
		"volumeMounts": []any{
			map[string]any{"name": configVolume, "mountPath": configMount, "readOnly": true},
		},
	}
}

// volume is the ConfigMap volume with only this API's files: exactly one
// sidecar block under configMount. A missing key keeps the pod from
// starting (the items are not optional).
func (pi *podInjector) volume() map[string]any {
	items := make([]any, 0, len(pi.Items))
	for _, it := range pi.Items {
		items = append(items, map[string]any{"key": it[0], "path": it[1]})
	}
	return map[string]any{"name": configVolume, "configMap": map[string]any{"name": pi.ConfigMap, "items": items}}
}

// injectPlan says what a pod spec lacks.
type injectPlan struct {
	addContainer, addVolume bool
	hadInit, hadVolumes     bool
}

func (p injectPlan) changes() bool { return p.addContainer || p.addVolume }

// plan compares spec with the sidecar: already there and the same → no
// change; there with another configuration → error.
func (pi *podInjector) plan(spec map[string]any) (injectPlan, error) {
	var p injectPlan
	if spec == nil {
		return p, errors.New("the pod has no spec")
	}
	want := pi.container()
	init, ok := listOf(spec, "initContainers")
	if !ok {
		return p, errors.New("spec.initContainers is not a list")
	}
	p.hadInit = init != nil
	app, ok := listOf(spec, "containers")
	if !ok {
		return p, errors.New("spec.containers is not a list")
	}
	switch c := named(init, sidecarName); {
	case c != nil:
		if !subset(want, c) {
			return p, fmt.Errorf("the pod already has an %q init container of another configuration (not api %q with image %s): remove it first", sidecarName, pi.API, pi.Image)
		}
	case named(app, sidecarName) != nil:
		return p, fmt.Errorf("the pod already has an %q container: remove it first (the sidecar is injected as an init container)", sidecarName)
	default:
		p.addContainer = true
	}
	vols, ok := listOf(spec, "volumes")
	if !ok {
		return p, errors.New("spec.volumes is not a list")
	}
	p.hadVolumes = vols != nil
	if v := named(vols, configVolume); v != nil {
		if !subset(pi.volume(), v) {
			return p, fmt.Errorf("the pod already has a volume %q of another configuration: remove it first", configVolume)
		}
	} else {
		p.addVolume = true
	}
	return p, nil
}

// apply injects into spec in place (inject's YAML); the sidecar goes first
// among the init containers.
func (pi *podInjector) apply(spec map[string]any, p injectPlan) {
	if p.addContainer {
		init, _ := listOf(spec, "initContainers")
		spec["initContainers"] = append([]any{pi.container()}, init...)
	}
	if p.addVolume {
		vols, _ := listOf(spec, "volumes")
		spec["volumes"] = append(vols, pi.volume())
	}
}

// patch is the RFC 6902 JSON Patch doing apply on a Pod (the webhook's).
func (pi *podInjector) patch(p injectPlan) []map[string]any {
	var ops []map[string]any
	if p.addContainer {
		if p.hadInit {
			ops = append(ops, map[string]any{"op": "add", "path": "/spec/initContainers/0", "value": pi.container()})
		} else {
			ops = append(ops, map[string]any{"op": "add", "path": "/spec/initContainers", "value": []any{pi.container()}})
		}
	}
	if p.addVolume {
		if p.hadVolumes {
			ops = append(ops, map[string]any{"op": "add", "path": "/spec/volumes/-", "value": pi.volume()})
		} else {
			ops = append(ops, map[string]any{"op": "add", "path": "/spec/volumes", "value": []any{pi.volume()}})
		}
	}
	return ops
}

// portWarnings says what inject cannot check about keeping the service's
// own port private: the app must listen on 127.0.0.1 (the sidecar's
// upstream) and Services must target the sidecar's port.
func (pi *podInjector) portWarnings(where string, spec map[string]any) []string {
	host, port, _ := net.SplitHostPort(pi.Upstream)
	var out []string
	app, _ := listOf(spec, "containers")
	told := false
	for _, c := range app {
		cm, _ := c.(map[string]any)
		name, _ := cm["name"].(string)
		ports, _ := listOf(cm, "ports")
		for _, pp := range ports {
			pm, _ := pp.(map[string]any)
			if n, ok := pm["containerPort"].(int64); ok && strconv.FormatInt(n, 10) == port {
				out = append(out, fmt.Sprintf("%s: container %q declares port %s, the sidecar's upstream: make it listen on %s only, or the pod's IP reaches it without the sidecar", where, name, port, net.JoinHostPort(host, port)))
			}
			if n, ok := pm["containerPort"].(int64); ok && (n == int64(pi.Port) || n == int64(pi.AdminPort)) {
				out = append(out, fmt.Sprintf("%s: container %q declares port %d, which the sidecar uses", where, name, n))
			}
		}
		if mentions(cm, net.JoinHostPort(host, port)) || mentions(cm, "localhost:"+port) {
			told = true
		}
	}
	if !told && len(out) == 0 {
		out = append(out, fmt.Sprintf("%s: cannot tell whether the app listens only on %s (the sidecar's upstream): nothing in its env, args or command says so", where, pi.Upstream))
	}
	return out
}

// mentions reports whether s appears in a container's env values, args or
// command.
func mentions(c map[string]any, s string) bool {
	for _, k := range []string{"args", "command"} {
		l, _ := listOf(c, k)
		for _, a := range l {
			if str, ok := a.(string); ok && strings.Contains(str, s) {
				return true
			}
		}
	}
	env, _ := listOf(c, "env")
	for _, e := range env {
		em, _ := e.(map[string]any)
		if v, ok := em["value"].(string); ok && strings.Contains(v, s) {
			return true
		}
	}
	return false
}

// listOf returns m[key] as a list: nil, true when absent; false when it is
// something else.
func listOf(m map[string]any, key string) ([]any, bool) {
	v, ok := m[key]
	if !ok || v == nil {
		return nil, true
	}
	l, ok := v.([]any)
	return l, ok
}

// named is the element of l whose name is name, or nil.
func named(l []any, name string) map[string]any {
	for _, e := range l {
		if m, ok := e.(map[string]any); ok && m["name"] == name {
			return m
		}
	}
	return nil
}

// subset reports whether got holds everything of want: maps may have more
// keys (the API server's defaults); a list of objects may have more
// elements (the ServiceAccount admission plugin adds its token's
// volumeMount to every container), each wanted one matching one of them;
// a list of scalars (args) must be equal.
func subset(want, got any) bool {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return false
		}
		for k, v := range w {
			if !subset(v, g[k]) {
				return false
			}
		}
		return true
	case []any:
		g, ok := got.([]any)
		if !ok {
			return false
		}
		for i := range w {
			if _, obj := w[i].(map[string]any); !obj {
				return len(g) == len(w) && reflect.DeepEqual(w, g)
			}
			found := false
			for j := range g {
				if subset(w[i], g[j]) {
					found = true
					break
				}
			}
			if !found {
				return false
			}
		}
		return true
	default:
		return reflect.DeepEqual(want, got)
	}
}

// normalize turns a decoded JSON or YAML value into the JSON shapes the
// injector compares: integral numbers int64, others float64.
func normalize(v any) (any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return decodeJSON(b)
}

// decodeJSON decodes b keeping integers exact.
func decodeJSON(b []byte) (any, error) {
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return fixNumbers(v), nil
}

func fixNumbers(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			t[k] = fixNumbers(e)
		}
	case []any:
		for i, e := range t {
			t[i] = fixNumbers(e)
		}
	case json.Number:
		if n, err := t.Int64(); err == nil {
			return n
		}
		f, _ := t.Float64()
		return f
	}
	return v
}

// podSpecOf returns the pod spec inside a workload object of kind, or nil
// for kinds without one.
func podSpecOf(obj map[string]any) (map[string]any, error) {
	kind, _ := obj["kind"].(string)
	var path []string
	switch kind {
	case "Pod":
		path = []string{"spec"}
	case "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "ReplicationController":
		path = []string{"spec", "template", "spec"}
	case "CronJob":
		path = []string{"spec", "jobTemplate", "spec", "template", "spec"}
	default:
		return nil, nil
	}
	cur := obj
	for _, k := range path {
		next, ok := cur[k].(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%s has no %s", kind, strings.Join(path, "."))
		}
		cur = next
	}
	return cur, nil
}
