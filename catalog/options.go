package catalog

import "os"

// KeyMode says what Load does with signing_key private key files.
type KeyMode int

const (
	// KeysSkip never reads private keys: a sidecar runs without them.
	KeysSkip KeyMode = iota
	// KeysCheck reads them as `check` does: an absent file is a warning, a
	// present but unreadable or mismatched one is an error.
	KeysCheck
	// KeysRequire reads them for the commands that sign: an absent,
	// unreadable or mismatched file is an error.
	KeysRequire
)

// Options tune Load. A nil *Options is the zero value.
type Options struct {
	// Keys says whether private keys are read. If zero, KeysSkip.
	Keys KeyMode
	// LookupEnv resolves env("NAME"). If nil, os.LookupEnv.
	LookupEnv func(string) (string, bool)
	// NotRun lists the blocks that the command does not run, whose secrets
	// it does not need: an unset env() or an unreadable secret_file there
	// is a warning and leaves the secret empty. If zero, every secret must
	// resolve.
	NotRun Blocks
}

func (o *Options) lookupEnv() func(string) (string, bool) {
	if o == nil || o.LookupEnv == nil {
		return os.LookupEnv
	}
	return o.LookupEnv
}

func (o *Options) keys() KeyMode {
	if o == nil {
		return KeysSkip
	}
	return o.Keys
}
