package detcheck

import (
	"fmt"
	"go/ast"
	"go/types"
	"strings"

	"golang.org/x/tools/go/packages"
)

// orderlessMark is the comment that vouches for a range over a map: the
// loop's effect does not depend on the iteration order (a minimum, a sum,
// keys collected and sorted before use). It goes on the for line or the
// line above, with a reason.
const orderlessMark = "detcheck:orderless"

// CheckMapRanges type-checks the packages (import paths, loaded from dir)
// and reports every range over a map that is not marked orderless: map
// order is random, and must never reach an output or a state hash.
func CheckMapRanges(dir string, pkgPaths []string) ([]Violation, error) {
	cfg := &packages.Config{
		Mode: packages.NeedName | packages.NeedFiles | packages.NeedSyntax | packages.NeedTypes | packages.NeedTypesInfo,
		Dir:  dir,
	}
	pkgs, err := packages.Load(cfg, pkgPaths...)
	if err != nil {
		return nil, fmt.Errorf("load packages: %w", err)
	}
	var vs []Violation
	for _, p := range pkgs {
		if len(p.Errors) > 0 {
			return nil, fmt.Errorf("package %s: %v", p.PkgPath, p.Errors[0])
		}
		for _, f := range p.Syntax {
			marked := map[int]bool{} // lines carrying the mark
			for _, cg := range f.Comments {
				for _, c := range cg.List {
					if strings.Contains(c.Text, orderlessMark) {
						marked[p.Fset.Position(c.Slash).Line] = true
					}
				}
			}
			ast.Inspect(f, func(n ast.Node) bool {
				rs, ok := n.(*ast.RangeStmt)
				if !ok {
					return true
				}
				t := p.TypesInfo.TypeOf(rs.X)
				if t == nil {
					return true
				}
				if _, isMap := t.Underlying().(*types.Map); !isMap {
					return true
				}
				pos := p.Fset.Position(rs.For)
				if marked[pos.Line] || marked[pos.Line-1] {
					return true
				}
				vs = append(vs, Violation{Pos: pos.String(),
					What: "range over a map: its order is random; sort the keys, or mark the loop //" + orderlessMark + " with why order cannot matter"})
				return true
			})
		}
	}
	return vs, nil
}
