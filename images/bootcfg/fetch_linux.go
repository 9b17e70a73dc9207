package bootcfg

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/u-root/u-root/pkg/curl"
	"github.com/u-root/u-root/pkg/dhclient"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Load returns the config bytes of src. Network sources first configure
// every Ethernet interface with DHCP; media sources mount each block device
// read-only in turn and look for the path. Progress lines go to w.
func Load(ctx context.Context, src Source, embedded string, w io.Writer) ([]byte, error) {
	switch src.Kind {
	case None:
		return nil, errors.New("no config source")
	case Embedded, Local:
		p := src.Path
		if src.Kind == Embedded {
			p = embedded
		}
		return readBounded(p)
	case Media:
		return loadFromMedia(ctx, src.Path, w)
	case Network:
		waitEntropy(ctx, w)
		if err := dhcp(ctx, w); err != nil {
			return nil, err
		}
		return fetchURL(ctx, src, w)
	}
	return nil, fmt.Errorf("unknown config source kind %d", src.Kind)
}

// waitEntropy says so on the console while the kernel's random number
// generator is not yet seeded: the DHCP and TFTP clients block on it, and
// on a machine without RDRAND, hwrng or TPM that can take minutes.
func waitEntropy(ctx context.Context, w io.Writer) {
	var b [1]byte
	if _, err := unix.Getrandom(b[:], unix.GRND_NONBLOCK); err != unix.EAGAIN {
		return
	}
	fmt.Fprintln(w, "ftvs installer: waiting for the kernel's random number generator (no RDRAND, hwrng or TPM seeded it yet)")
	t0 := time.Now()
	for ctx.Err() == nil {
		if _, err := unix.Getrandom(b[:], unix.GRND_NONBLOCK); err != unix.EAGAIN {
			fmt.Fprintf(w, "ftvs installer: random number generator ready after %v\n", time.Since(t0).Round(time.Second))
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func readBounded(p string) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", p, err)
	}
	defer f.Close()
	return readAllBounded(f, p)
}

func readAllBounded(r io.Reader, name string) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxConfigSize+1))
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", name, err)
	}
	if len(b) > MaxConfigSize {
		return nil, fmt.Errorf("config %s: larger than %d bytes", name, MaxConfigSize)
	}
	return b, nil
}

// dhcp brings up every eth*/en* interface and applies the first IPv4 lease.
func dhcp(ctx context.Context, w io.Writer) error {
	var ifs []netlink.Link
	deadline := time.Now().Add(15 * time.Second)
	for {
		l, err := dhclient.Interfaces("^(eth|en)")
		if err == nil && len(l) > 0 {
			ifs = l
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("DHCP: no Ethernet interface appeared (is the NIC driver in the initramfs?)")
		}
		time.Sleep(200 * time.Millisecond)
	}
	names := make([]string, len(ifs))
	for i, l := range ifs {
		names[i] = l.Attrs().Name
	}
	fmt.Fprintf(w, "ftvs installer: DHCP on %s\n", strings.Join(names, ", "))
	log.SetOutput(io.Discard) // dhclient logs every attempt
	defer log.SetOutput(os.Stderr)
	cfg := dhclient.Config{Timeout: 5 * time.Second, Retries: 4}
	var errs []error
	for r := range dhclient.SendRequests(ctx, ifs, true, false, cfg, 20*time.Second) {
		if r.Err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", r.Interface.Attrs().Name, r.Err))
			continue
		}
		if err := r.Lease.Configure(); err != nil {
			errs = append(errs, fmt.Errorf("%s: configuring lease: %w", r.Interface.Attrs().Name, err))
			continue
		}
		fmt.Fprintf(w, "ftvs installer: %s configured by DHCP\n", r.Interface.Attrs().Name)
		return nil
	}
	return fmt.Errorf("DHCP: no lease on %s: %w", strings.Join(names, ", "), errors.Join(errs...))
}

func fetchURL(ctx context.Context, src Source, w io.Writer) ([]byte, error) {
	var lastErr error
	for attempt := 1; attempt <= 5; attempt++ {
		fmt.Fprintf(w, "ftvs installer: fetching %s (attempt %d)\n", src.URL, attempt)
		f, err := curl.DefaultSchemes.FetchWithoutCache(ctx, src.URL)
		if err == nil {
			var b []byte
			if b, err = readAllBounded(f, src.URL.String()); err == nil {
				return b, nil
			}
		}
		lastErr = err
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
	}
	return nil, fmt.Errorf("fetching %s: %w", src.URL, lastErr)
}

const mediaMount = "/run/ftvs-media"

// loadFromMedia mounts each block device (and partition) read-only as vfat
// or iso9660 and returns the first file found at p. USB sticks appear
// asynchronously, so it keeps looking for a while.
func loadFromMedia(ctx context.Context, p string, w io.Writer) ([]byte, error) {
	if err := os.MkdirAll(mediaMount, 0o755); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(20 * time.Second)
	tried := map[string]bool{}
	for {
		devs, _ := filepath.Glob("/sys/class/block/*")
		for _, d := range devs {
			name := filepath.Base(d)
			if strings.HasPrefix(name, "loop") || strings.HasPrefix(name, "ram") || tried[name] {
				continue
			}
			dev := "/dev/" + name
			for _, fstype := range []string{"vfat", "iso9660"} {
				if err := unix.Mount(dev, mediaMount, fstype, unix.MS_RDONLY, ""); err != nil {
					continue
				}
				tried[name] = true
				b, err := readBounded(filepath.Join(mediaMount, p))
				unix.Unmount(mediaMount, 0)
				if err == nil {
					fmt.Fprintf(w, "ftvs installer: found %s on %s (%s)\n", p, dev, fstype)
					return b, nil
				}
				break
			}
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("config media:%s: no vfat or iso9660 file system holds it (tried %d devices)", p, len(tried))
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}
