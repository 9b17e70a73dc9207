package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestUpgradeUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"upgrade"},
		{"upgrade", "--binary", "/nonexistent/ftvs", "--addr", "a:1", "--exe", "/x"},
		{"upgrade", "--binary", "/nonexistent/ftvs", "--addr", "a:1", "--exe", "/x", "--addr", "b:1", "--exe", "/y"},
	} {
		root := newRootCmd()
		root.SetArgs(args)
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetErr(&out)
		err := root.Execute()
		var ee *exitError
		if !errors.As(err, &ee) || ee.code != 2 {
			t.Errorf("%v: err %v, want exit status 2", args, err)
		}
	}
}

func TestReplaceExecutable(t *testing.T) {
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "new"), filepath.Join(dir, "ftvs")
	if err := os.WriteFile(src, []byte("new binary"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, []byte("old binary"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := replaceExecutable(src, dst); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(dst)
	st, _ := os.Stat(dst)
	if err != nil || string(b) != "new binary" || st.Mode().Perm() != 0o755 {
		t.Fatalf("after replace: %q %v mode %v", b, err, st.Mode())
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".ftvs-upgrade") {
			t.Fatalf("temporary file left: %s", e.Name())
		}
	}
	if err := replaceExecutable(filepath.Join(dir, "missing"), dst); err == nil || !strings.Contains(err.Error(), "--binary") {
		t.Fatalf("missing source: %v", err)
	}
}
