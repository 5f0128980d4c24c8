package main

import (
	"slices"
	"strings"
	"testing"
)

func TestEnvList(t *testing.T) {
	tests := []struct {
		in      string
		want    []string
		wantErr string
	}{
		{in: "", want: nil},
		{in: "GOGC=50", want: []string{"GOGC=50"}},
		{in: " GOGC=50 , GOMEMLIMIT=12MiB,", want: []string{"GOGC=50", "GOMEMLIMIT=12MiB"}},
		{in: "GOGC", wantErr: `-env-b "GOGC"`},
		{in: "=50", wantErr: `-env-b "=50"`},
	}
	for _, tt := range tests {
		err := checkEnvList(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("checkEnvList(%q) = %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("checkEnvList(%q): %v", tt.in, err)
		}
		if got := envList(tt.in); !slices.Equal(got, tt.want) {
			t.Errorf("envList(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestSidecarB(t *testing.T) {
	if (&config{embedtoken: "/bin/true"}).sidecarB("", "") != nil {
		t.Error("sidecarB without -embedtoken-b or -env-b: want nil")
	}
	if (&config{embedtoken: "/bin/true", bEnv: "GOGC=50"}).sidecarB("", "") == nil {
		t.Error("sidecarB with -env-b: want a starter")
	}
}
