package api

import (
	"context"
	"testing"
)

// BenchmarkStatusHTTPS: one authenticated GET /api/v1/status over a kept-alive
// TLS connection (what ftvs ctl status and the page cost the daemon).
func BenchmarkStatusHTTPS(b *testing.B) {
	f := startServerTB(b)
	c, err := NewClient(ClientOptions{Addr: f.addr, Token: f.token, CAFile: f.serverCert})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ResetTimer()
	for range b.N {
		if _, err := c.Status(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
