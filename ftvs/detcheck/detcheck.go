// Package detcheck enforces the rules of the deterministic core (DESIGN.md,
// "The deterministic core") on source code: it walks every package of this
// module that a root package (ftvs/machine) depends on and reports forbidden
// imports, forbidden uses of the time package, goroutines and channels.
// It is a tool for tests, not part of the core.
package detcheck

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Violation is one broken rule at a source position.
type Violation struct {
	Pos  string // file:line:col
	What string
}

func (v Violation) String() string { return v.Pos + ": " + v.What }

// forbidden maps an import path (or a prefix ending in "/") to why.
var forbidden = []struct{ path, why string }{
	{"math/rand", "randomness must come from a seeded generator kept in state"},
	{"math/rand/v2", "randomness must come from a seeded generator kept in state"},
	{"crypto/rand", "randomness must come from a seeded generator kept in state"},
	{"sync", "no locks: the core runs on one goroutine"},
	{"sync/atomic", "no atomics: the core runs on one goroutine"},
	{"os", "no OS access: files come through fsapi.FileStore"},
	{"os/", "no OS access"},
	{"net", "no OS networking: frames come as Inputs"},
	{"net/", "no OS networking"},
	{"syscall", "no system calls"},
	{"golang.org/x/sys/", "no system calls"},
	{"unsafe", "memory layout must not reach state"},
	{"reflect", "no reflection: state is encoded by hand"},
	{"runtime", "the runtime's state (GOMAXPROCS, scheduling) must not reach the core"},
	{"runtime/", "the runtime's state must not reach the core"},
	{"log", "no logging to the OS: report through Outputs"},
	{"log/", "no logging to the OS"},
	{"io/ioutil", "no OS access"},
	{"plugin", "no dynamic code"},
	{"hash/maphash", "seeded per process: not deterministic"},
}

// allowedTime are the only identifiers of package time the core may use.
var allowedTime = map[string]bool{
	"Duration": true, "Nanosecond": true, "Microsecond": true, "Millisecond": true,
	"Second": true, "Minute": true, "Hour": true,
}

// stdoutFmt are fmt functions that write to the process's stdout.
var stdoutFmt = map[string]bool{"Print": true, "Println": true, "Printf": true}

func forbiddenImport(path string) (string, bool) {
	for _, f := range forbidden {
		if path == f.path || (strings.HasSuffix(f.path, "/") && strings.HasPrefix(path, f.path)) {
			return f.why, true
		}
	}
	return "", false
}

type listedPackage struct {
	ImportPath string
	Dir        string
	GoFiles    []string
	CgoFiles   []string
	Standard   bool
	Module     *struct{ Path string }
	Error      *struct{ Err string }
}

// CheckModule lists root (a package pattern, run in dir) with all its
// dependencies and checks every package of the module modPath among them,
// including its ranges over maps (CheckMapRanges).
// Packages outside the module must be in the standard library. It returns
// the packages checked and the violations, sorted.
func CheckModule(dir, goTool, modPath, root string) ([]string, []Violation, error) {
	cmd := exec.Command(goTool, "list", "-deps", "-json", root)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, nil, fmt.Errorf("go list -deps %s: %w: %s", root, err, stderr.String())
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	var checked []string
	var vs []Violation
	for {
		var p listedPackage
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			return nil, nil, fmt.Errorf("go list output: %w", err)
		}
		if p.Error != nil {
			return nil, nil, fmt.Errorf("package %s: %s", p.ImportPath, p.Error.Err)
		}
		if p.Standard {
			continue
		}
		if p.Module == nil || p.Module.Path != modPath {
			vs = append(vs, Violation{Pos: p.ImportPath, What: "the core depends on a package outside the standard library and this module"})
			continue
		}
		if len(p.CgoFiles) > 0 {
			vs = append(vs, Violation{Pos: p.ImportPath, What: "cgo in the core"})
		}
		files := make([]string, 0, len(p.GoFiles))
		for _, f := range p.GoFiles {
			files = append(files, filepath.Join(p.Dir, f))
		}
		fv, err := CheckFiles(files)
		if err != nil {
			return nil, nil, err
		}
		vs = append(vs, fv...)
		checked = append(checked, p.ImportPath)
	}
	if len(checked) == 0 {
		return nil, nil, errors.New("no package of the module was listed")
	}
	mv, err := CheckMapRanges(dir, checked)
	if err != nil {
		return nil, nil, err
	}
	vs = append(vs, mv...)
	sort.Slice(vs, func(i, j int) bool { return vs[i].Pos < vs[j].Pos })
	return checked, vs, nil
}

// CheckFiles parses Go files and reports every rule they break.
func CheckFiles(files []string) ([]Violation, error) {
	fset := token.NewFileSet()
	var vs []Violation
	for _, name := range files {
		f, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", name, err)
		}
		vs = append(vs, checkFile(fset, f)...)
	}
	return vs, nil
}

func checkFile(fset *token.FileSet, f *ast.File) []Violation {
	var vs []Violation
	add := func(n ast.Node, format string, args ...any) {
		vs = append(vs, Violation{Pos: fset.Position(n.Pos()).String(), What: fmt.Sprintf(format, args...)})
	}
	// Names under which time and fmt are imported in this file.
	timeNames, fmtNames := map[string]bool{}, map[string]bool{}
	for _, imp := range f.Imports {
		path, _ := strconv.Unquote(imp.Path.Value)
		if why, bad := forbiddenImport(path); bad {
			add(imp, "imports %q: %s", path, why)
		}
		if path == "C" {
			add(imp, "imports \"C\": cgo in the core")
		}
		name := filepath.Base(path)
		if imp.Name != nil {
			name = imp.Name.Name
		}
		switch path {
		case "time":
			if name == "." || name == "_" {
				add(imp, "imports time as %q: only time.Duration may be used, by name", name)
			}
			timeNames[name] = true
		case "fmt":
			fmtNames[name] = true
		}
	}
	ast.Inspect(f, func(n ast.Node) bool {
		switch x := n.(type) {
		case *ast.GoStmt:
			add(x, "go statement: the core runs on one goroutine")
		case *ast.ChanType:
			add(x, "channel type: the core runs on one goroutine")
		case *ast.SendStmt:
			add(x, "channel send")
		case *ast.SelectStmt:
			add(x, "select statement")
		case *ast.UnaryExpr:
			if x.Op == token.ARROW {
				add(x, "channel receive")
			}
		case *ast.SelectorExpr:
			id, ok := x.X.(*ast.Ident)
			if !ok {
				break
			}
			if timeNames[id.Name] && !allowedTime[x.Sel.Name] {
				add(x, "uses time.%s: only time.Duration and its unit constants are allowed", x.Sel.Name)
			}
			if fmtNames[id.Name] && stdoutFmt[x.Sel.Name] {
				add(x, "fmt.%s writes to stdout", x.Sel.Name)
			}
		}
		return true
	})
	return vs
}
