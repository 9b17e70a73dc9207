package vbootdisk

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem/fat32"
	"github.com/ftvs/ftvs/ftvs/blockdev"
	"github.com/ftvs/ftvs/ftvs/blockdev/filedev"
)

// benchDisk formats mib MiB with the given sectors per cluster.
func benchDisk(b *testing.B, mib int64, spc int) *Store {
	b.Helper()
	mkfs, err := exec.LookPath("mkfs.fat")
	if err != nil {
		if _, err := os.Stat("/usr/sbin/mkfs.fat"); err != nil {
			b.Skip("mkfs.fat not installed (dosfstools)")
		}
		mkfs = "/usr/sbin/mkfs.fat"
	}
	img := filepath.Join(b.TempDir(), "bench.img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		b.Fatal(err)
	}
	if err := os.Truncate(img, mib<<20); err != nil {
		b.Fatal(err)
	}
	if out, err := exec.Command(mkfs, "-F", "32", "-s", fmt.Sprint(spc), img).CombinedOutput(); err != nil {
		b.Fatalf("mkfs.fat: %v\n%s", err, out)
	}
	s, err := Open(loadDisk(b, img))
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// BenchmarkStream writes then reads a 64 MiB file in 64 KiB chunks (an FTP
// STOR/RETR's pattern) on an in-memory disk: the store's own cost.
func BenchmarkStream(b *testing.B) {
	const size, chunk = 64 << 20, 64 << 10
	for _, spc := range []int{1, 8} {
		s := benchDisk(b, 200, spc)
		buf := make([]byte, chunk)
		b.Run(fmt.Sprintf("write/cluster%d", spc*512), func(b *testing.B) {
			b.SetBytes(size)
			for i := 0; i < b.N; i++ {
				if err := s.Create("bench.bin", t0); err != nil {
					b.Fatal(err)
				}
				for off := int64(0); off < size; off += chunk {
					if _, err := s.WriteAt("bench.bin", buf, off, t0); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
		b.Run(fmt.Sprintf("read/cluster%d", spc*512), func(b *testing.B) {
			b.SetBytes(size)
			for i := 0; i < b.N; i++ {
				for off := int64(0); off < size; off += chunk {
					if _, err := s.ReadAt("bench.bin", buf, off); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

// BenchmarkFileStream is the same 64 MiB stream on a file-backed disk
// (filedev, page cache) through this store and, for comparison, through
// go-diskfs v1.9.4 on the same kind of file (512-byte clusters, as go-diskfs
// formats volumes up to 260 MiB).
func BenchmarkFileStream(b *testing.B) {
	const size, chunk = 64 << 20, 64 << 10
	buf := make([]byte, chunk)
	img := func(b *testing.B) string {
		s := benchDisk(b, 200, 1)
		p := filepath.Join(b.TempDir(), "file.img")
		if err := os.WriteFile(p, s.dev.(*blockdev.Mem).Bytes(), 0o600); err != nil {
			b.Fatal(err)
		}
		return p
	}
	openStore := func(b *testing.B) *Store {
		dev, err := filedev.Open(img(b), filedev.Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { dev.Close() })
		s, err := Open(dev)
		if err != nil {
			b.Fatal(err)
		}
		return s
	}
	write := func(b *testing.B, s *Store) {
		if err := s.Create("bench.bin", t0); err != nil {
			b.Fatal(err)
		}
		for off := int64(0); off < size; off += chunk {
			if _, err := s.WriteAt("bench.bin", buf, off, t0); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("store/write", func(b *testing.B) {
		s := openStore(b)
		b.SetBytes(size)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			write(b, s)
		}
	})
	b.Run("store/read", func(b *testing.B) {
		s := openStore(b)
		write(b, s)
		b.SetBytes(size)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			for off := int64(0); off < size; off += chunk {
				if _, err := s.ReadAt("bench.bin", buf, off); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("godiskfs/write", func(b *testing.B) {
		p := img(b)
		st, err := file.OpenFromPath(p, false)
		if err != nil {
			b.Fatal(err)
		}
		defer st.Close()
		fs, err := fat32.Read(st, 200<<20, 0, 512)
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(size)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			f, err := fs.OpenFile("/bench.bin", os.O_CREATE|os.O_RDWR|os.O_TRUNC)
			if err != nil {
				b.Fatal(err)
			}
			for off := int64(0); off < size; off += chunk {
				if _, err := f.Write(buf); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}
