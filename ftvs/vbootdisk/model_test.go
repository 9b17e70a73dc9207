package vbootdisk

import (
	"bytes"
	"errors"
	"io"
	"math/rand"
	"sort"
	"strings"
	"testing"

	"github.com/ftvs/ftvs/ftvs/blockdev"
	"github.com/ftvs/ftvs/ftvs/fsapi"
)

// model is what the store should hold: files and directories by path
// ("" is the root). Names in the pools differ case-insensitively, so the
// model can compare paths exactly.
type model struct {
	files map[string][]byte
	dirs  map[string]bool
}

var (
	dirPool  = []string{"docs", "Sub Dir", "UP", "a very long directory name indeed"}
	filePool = []string{"f1.txt", "Long File Name 2.dat", "UPPER.TXT", "mixed Case.Html", "x~1", "deep name with spaces and more than 13 characters.bin", "ünïcödé.bin", "README"}
)

func parentOf(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[:i]
	}
	return ""
}

// resolve mirrors the store's path walk: the error for reaching p.
func (m *model) resolve(p string) error {
	parts := strings.Split(p, "/")
	for i := range parts {
		pre := strings.Join(parts[:i+1], "/")
		if m.dirs[pre] {
			continue
		}
		if _, ok := m.files[pre]; ok {
			if i < len(parts)-1 {
				return fsapi.ErrNotDir
			}
			continue
		}
		return fsapi.ErrNotExist
	}
	return nil
}

// parentErr is the error for p's parent not being a usable directory.
func (m *model) parentErr(p string) error {
	par := parentOf(p)
	if par == "" {
		return nil
	}
	if err := m.resolve(par); err != nil {
		return err
	}
	if !m.dirs[par] {
		return fsapi.ErrNotDir
	}
	return nil
}

func (m *model) children(dir string) []string {
	var names []string
	add := func(p string) {
		if p != "" && parentOf(p) == dir {
			names = append(names, p[strings.LastIndexByte(p, '/')+1:])
		}
	}
	for p := range m.files { //detcheck:orderless (test; sorted below)
		add(p)
	}
	for p := range m.dirs { //detcheck:orderless (test; sorted below)
		add(p)
	}
	sort.Strings(names)
	return names
}

func (m *model) check(t *testing.T, s *Store, step int) {
	t.Helper()
	for dir := range m.dirs {
		list, err := s.ReadDir(dir)
		if err != nil {
			t.Fatalf("step %d: ReadDir(%q): %v", step, dir, err)
		}
		var got []string
		for _, fi := range list {
			got = append(got, fi.Name)
			p := strings.TrimPrefix(dir+"/"+fi.Name, "/")
			if fi.Dir != m.dirs[p] {
				t.Fatalf("step %d: %s: Dir=%v", step, p, fi.Dir)
			}
		}
		if want := m.children(dir); strings.Join(got, "|") != strings.Join(want, "|") {
			t.Fatalf("step %d: ReadDir(%q) = %q, want %q", step, dir, got, want)
		}
	}
	for p, data := range m.files {
		buf := make([]byte, len(data)+1)
		n, err := s.ReadAt(p, buf, 0)
		if err != io.EOF || !bytes.Equal(buf[:n], data) {
			t.Fatalf("step %d: %s: read %d bytes (%v), want %d", step, p, n, err, len(data))
		}
	}
}

func TestRandomOpsAgainstModel(t *testing.T) {
	for _, c := range []struct {
		name      string
		devSector int
		args      []string
	}{
		{"512B clusters", 512, nil},
		{"4KiB clusters on a 4Kn device", 4096, []string{"-s", "8"}},
		{"2KiB clusters, 1 FAT", 512, []string{"-s", "4", "-f", "1"}},
	} {
		t.Run(c.name, func(t *testing.T) { randomOps(t, mkfsDiskWith(t, 40, c.devSector, c.args...)) })
	}
}

func randomOps(t *testing.T, base *blockdev.Mem) {
	for seed := int64(1); seed <= 4; seed++ {
		d := cloneDisk(t, base)
		s := open(t, d)
		m := &model{files: map[string][]byte{}, dirs: map[string]bool{"": true}}
		r := rand.New(rand.NewSource(seed))
		pick := func() string {
			p := dirPool[r.Intn(len(dirPool))]
			if r.Intn(3) == 0 {
				return p
			}
			if r.Intn(2) == 0 {
				p += "/" + dirPool[r.Intn(len(dirPool))]
			}
			if r.Intn(3) == 0 {
				p = ""
			}
			return strings.TrimPrefix(p+"/"+filePool[r.Intn(len(filePool))], "/")
		}
		for step := 0; step < 400; step++ {
			now := int64(t0 + step)
			p := pick()
			var err, want error
			switch op := r.Intn(7); op {
			case 0: // create
				want = m.parentErr(p)
				if want == nil && m.dirs[p] {
					want = fsapi.ErrIsDir
				}
				err = s.Create(p, now)
				if want == nil {
					m.files[p] = []byte{}
				}
			case 1, 2: // write
				data := pattern(1+r.Intn(20000), byte(step))
				off := int64(r.Intn(30000))
				want = m.resolve(p)
				if want == nil && m.dirs[p] {
					want = fsapi.ErrIsDir
				}
				_, err = s.WriteAt(p, data, off, now)
				if want == nil {
					f := m.files[p]
					if int64(len(f)) < off+int64(len(data)) {
						f = append(f, make([]byte, off+int64(len(data))-int64(len(f)))...)
					}
					copy(f[off:], data)
					m.files[p] = f
				}
			case 3: // truncate
				size := int64(r.Intn(25000))
				want = m.resolve(p)
				if want == nil && m.dirs[p] {
					want = fsapi.ErrIsDir
				}
				err = s.Truncate(p, size, now)
				if want == nil {
					f := m.files[p]
					if int64(len(f)) > size {
						f = f[:size]
					} else {
						f = append(f, make([]byte, size-int64(len(f)))...)
					}
					m.files[p] = f
				}
			case 4: // remove or rmdir
				want = m.resolve(p)
				if m.dirs[p] {
					if want == nil && len(m.children(p)) > 0 {
						want = fsapi.ErrNotEmpty
					}
					err = s.Rmdir(p, now)
					if want == nil {
						delete(m.dirs, p)
					}
				} else {
					err = s.Remove(p, now)
					if want == nil {
						delete(m.files, p)
					}
				}
			case 5: // mkdir
				want = m.parentErr(p)
				if want == nil {
					if _, ok := m.files[p]; ok || m.dirs[p] {
						want = fsapi.ErrExist
					}
				}
				err = s.Mkdir(p, now)
				if want == nil {
					m.dirs[p] = true
				}
			case 6: // rename
				to := pick()
				want = m.resolve(p)
				if want == nil {
					want = m.parentErr(to)
				}
				isDir := m.dirs[p]
				if want == nil && isDir && (parentOf(to) == p || strings.HasPrefix(parentOf(to), p+"/")) {
					want = fsapi.ErrInvalid
				}
				if want == nil && to != p {
					if m.dirs[to] {
						want = fsapi.ErrExist
					} else if _, ok := m.files[to]; ok && isDir {
						want = fsapi.ErrNotDir
					}
				}
				err = s.Rename(p, to, now)
				if want == nil && to != p {
					if isDir {
						for q := range m.dirs { //detcheck:orderless (test)
							if q == p || strings.HasPrefix(q, p+"/") {
								delete(m.dirs, q)
								m.dirs[to+q[len(p):]] = true
							}
						}
						moved := map[string][]byte{}
						for q, data := range m.files { //detcheck:orderless (test)
							if strings.HasPrefix(q, p+"/") {
								delete(m.files, q)
								moved[to+q[len(p):]] = data
							}
						}
						for q, data := range moved { //detcheck:orderless (test)
							m.files[q] = data
						}
					} else {
						delete(m.files, to)
						m.files[to] = m.files[p]
						delete(m.files, p)
					}
				}
				p += " -> " + to
			}
			if (want == nil) != (err == nil) || (want != nil && !errors.Is(err, want)) {
				t.Fatalf("seed %d step %d %s: got %v, want %v", seed, step, p, err, want)
			}
			if step%20 == 0 {
				m.check(t, s, step)
			}
		}
		m.check(t, s, 400)
		m.check(t, open(t, d), 401)
		fsck(t, d)
		checkFSInfo(t, d)
	}
}
