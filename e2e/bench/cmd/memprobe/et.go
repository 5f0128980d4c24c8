//go:build et

package main

// The whole embedtoken command package, for its initialisers and the code
// they reach (not every subcommand's code: the linker drops what main does
// not call).
import _ "github.com/embedtoken/embedtoken/cmd"
