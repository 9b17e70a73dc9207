package wizard

import (
	"os"
	"testing"

	"github.com/ftvs/ftvs/installer/internal/ftvsbin"
)

func TestMain(m *testing.M) {
	code := m.Run()
	ftvsbin.Cleanup()
	os.Exit(code)
}
