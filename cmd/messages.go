package cmd

import (
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/embedtoken/embedtoken/catalog"
)

// commands are the subcommand names, for "did you mean".
var commands = []string{"check", "keygen", "mint", "inspect", "hook", "sidecar", "demo", "version", "help"}

// unknownCommand is the usage error for a mistyped command.
func unknownCommand(name string) error {
	hint := "run 'embedtoken help' for the list of commands"
	if n := catalog.Nearest(strings.ToLower(name), commands); n != "" {
		hint = fmt.Sprintf("did you mean 'embedtoken %s'? (%s)", n, hint)
	}
	return &usageError{msg: fmt.Sprintf("unknown command %q", name), hint: hint}
}

// internalPrefixes are the package prefixes of sentinel errors
// ("unwrap: malformed token"): they mean nothing to users.
var internalPrefixes = []string{"unwrap: ", "mint: ", "catalog: ", "strictjson: "}

// userText is err's message for users, without internal package names.
func userText(err error) string {
	s := err.Error()
	for _, p := range internalPrefixes {
		s = strings.ReplaceAll(s, p, "")
	}
	return s
}

// listenError names the setting of a listener that cannot bind:
// "sidecar.listen 127.0.0.1:8443: address already in use".
func listenError(s *server, err error) error {
	what := s.setting
	if what == "" {
		what = s.name + " listener"
	}
	cause := err
	var se *os.SyscallError
	if errors.As(err, &se) {
		cause = se.Err
	}
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("%s %s: %w (another process listens there: stop it or change %s)", what, s.addr, cause, what)
	}
	return fmt.Errorf("%s %s: %w", what, s.addr, cause)
}

// versionText is what `embedtoken version` prints: the version set at build
// time, else the module's, then the VCS revision and time and the Go
// version when the build recorded them.
func versionText() string {
	v := Version
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "embedtoken " + v
	}
	if v == "dev" && info.Main.Version != "" && info.Main.Version != "(devel)" {
		v = info.Main.Version
	}
	var b strings.Builder
	fmt.Fprintf(&b, "embedtoken %s", v)
	settings := map[string]string{}
	for _, s := range info.Settings {
		settings[s.Key] = s.Value
	}
	if rev := settings["vcs.revision"]; rev != "" {
		fmt.Fprintf(&b, "\n  revision %s", rev)
		if settings["vcs.modified"] == "true" {
			b.WriteString(" (modified)")
		}
	}
	if t := settings["vcs.time"]; t != "" {
		fmt.Fprintf(&b, "\n  time     %s", t)
	}
	fmt.Fprintf(&b, "\n  go       %s", info.GoVersion)
	return b.String()
}

// noTokenHint explains an empty embedded map: which scopes (and, with
// mint_for = "audience", audiences) the exposed APIs would need.
func noTokenHint(cat *catalog.Catalog, scopes, audience []string) string {
	var wanted []string
	for _, a := range cat.Roots() {
		wanted = append(wanted, fmt.Sprintf("%s (%s)", a.Name, strings.Join(a.Scopes, " ")))
	}
	hint := fmt.Sprintf("hint: no exposed API got a token: --scope %q shares no scope with %s",
		strings.Join(scopes, " "), strings.Join(wanted, ", "))
	if cat.Minter.MintFor == catalog.MintForAudience {
		hint += fmt.Sprintf("; with mint_for = \"audience\" an API's audience must also be granted (--audience, now %q)", strings.Join(audience, " "))
	}
	return hint
}
