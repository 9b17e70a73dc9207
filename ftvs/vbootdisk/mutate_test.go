package vbootdisk

import (
	"math/rand"
	"testing"

	"github.com/ftvs/ftvs/ftvs/blockdev"
)

// TestMutatedImages opens and changes thousands of seeded random mutations
// of a small volume: no panic, no hang (the test's timeout catches one).
func TestMutatedImages(t *testing.T) {
	img := tinyImage(t)
	r := rand.New(rand.NewSource(1))
	for iter := 0; iter < 3000; iter++ {
		data := append([]byte(nil), img...)
		for k := 0; k < 1+r.Intn(8); k++ {
			switch r.Intn(4) {
			case 0:
				data[r.Intn(len(data))] = byte(r.Intn(256))
			case 1:
				data = data[:r.Intn(len(data))+1]
			case 2:
				i, j := r.Intn(len(data)), r.Intn(len(data))
				n := r.Intn(64)
				if i+n < len(data) && j+n < len(data) {
					copy(data[i:i+n], data[j:j+n])
				}
			case 3:
				if len(data) < 8 {
					continue
				}
				i := r.Intn(len(data) - 3)
				data[i], data[i+1], data[i+2], data[i+3] = 0xff, 0xff, 0xff, 0xff
			}
		}
		func() {
			m, _ := blockdev.NewMem(256<<10, 512)
			copy(m.Bytes(), data)
			s, err := Open(m)
			if err == nil {
				b := 200
				walk(s, "", &b)
				_ = s.Create("new file.txt", t0)
				_, _ = s.WriteAt("new file.txt", []byte("data"), 600, t0)
				_ = s.Mkdir("NEWDIR", t0)
				_ = s.Rename("new file.txt", "NEWDIR/x", t0)
			}
		}()
	}
}
