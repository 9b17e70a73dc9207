// Package manager wires the manager's parts into a running CoServer daemon:
// the state model fed by the daemon (state.Source), the alert dispatcher, the
// Prometheus metrics and the HTTPS API with the web page, all on the
// management address. The daemon calls Start once and Wait at shutdown.
package manager

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"sync"

	"github.com/ftvs/ftvs/ftvs/manager/alert"
	"github.com/ftvs/ftvs/ftvs/manager/api"
	"github.com/ftvs/ftvs/ftvs/manager/metrics"
	"github.com/ftvs/ftvs/ftvs/manager/state"
	"github.com/ftvs/ftvs/ftvs/manager/web"
	"github.com/ftvs/ftvs/internal/yamlconf"
)

// Sections are the two config sections a CoServer config embeds:
//
//	type Config struct {
//		...
//		manager.Sections `yaml:",inline"`
//	}
type Sections struct {
	Manager api.Config   `yaml:"manager"`
	Alerts  alert.Config `yaml:"alerts"`
}

// Check validates both sections (call it from the config's validation, so
// nothing starts on a bad config); host names this CoServer in alerts.
func (s *Sections) Check(d *yamlconf.Doc, host string) error {
	if err := s.Manager.Check(d, "manager"); err != nil {
		return err
	}
	_, _, err := s.Alerts.Build(d, "alerts", host)
	return err
}

// Options are what Start needs from the daemon.
type Options struct {
	Sections
	Doc     *yamlconf.Doc // the loaded config, for error lines; nil is fine
	Host    string        // this CoServer's name, in alerts
	Source  state.Source
	Control state.Controller
	Log     *slog.Logger
}

// Manager is the running manager.
type Manager struct {
	Model    *state.Model
	Alerts   *alert.Dispatcher
	Addr     net.Addr // where the API listens
	Token    string   // the bearer token (from token_file or state_dir)
	CertFile string   // the server certificate clients trust ("" when configured by the operator)

	wg   sync.WaitGroup
	mu   sync.Mutex
	errs []error
}

// Start binds the API on manager.listen and starts the model, the alerts and
// the server; they stop when ctx ends (then call Wait).
func Start(ctx context.Context, o Options) (*Manager, error) {
	if o.Source == nil || o.Control == nil {
		return nil, errors.New("manager: Source and Control are required")
	}
	if o.Doc == nil {
		o.Doc = &yamlconf.Doc{}
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if err := o.Manager.Check(o.Doc, "manager"); err != nil {
		return nil, err
	}
	aopt, chans, err := o.Alerts.Build(o.Doc, "alerts", o.Host)
	if err != nil {
		return nil, err
	}
	aopt.Log = o.Log
	cfg := o.Manager
	cert, err := api.LoadOrCreateCert(cfg.TLS.Cert, cfg.TLS.Key, cfg.StateDir, cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("manager: %w", err)
	}
	token, err := api.LoadOrCreateToken(cfg.TokenFile, cfg.StateDir)
	if err != nil {
		return nil, fmt.Errorf("manager: %w", err)
	}
	srv := &api.Server{Token: token, Control: o.Control, Page: web.Handler(), Log: o.Log}
	if cfg.TLS.ClientCA != "" {
		if srv.ClientCAs, err = api.LoadCAPool(cfg.TLS.ClientCA); err != nil {
			return nil, fmt.Errorf("manager: tls.client_ca: %w", err)
		}
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("manager: listen on the management address: %w", err)
	}
	m := &Manager{Model: state.NewModel(cfg.Events), Addr: ln.Addr(), Token: token}
	if cfg.TLS.Cert == "" {
		m.CertFile = filepath.Join(cfg.StateDir, api.CertFileName)
	}
	srv.Model = m.Model
	if *cfg.Metrics {
		srv.Metrics = metrics.Handler(metrics.Registry(metrics.NewCollector(m.Model.Current)))
	}
	m.Alerts = alert.NewDispatcher(aopt, chans...)
	m.Model.OnEvent(func(e state.Event) {
		if a, ok := alert.FromEvent(o.Host, e); ok {
			m.Alerts.Notify(a)
		}
	})
	m.Alerts.Start(ctx)
	m.run(func() error { return m.Model.Run(ctx, o.Source, cfg.Poll) })
	m.run(func() error { return srv.Serve(ctx, ln, cert) })
	o.Log.Info("manager API listening", "addr", m.Addr.String(), "alerts", m.Alerts.String())
	return m, nil
}

func (m *Manager) run(fn func() error) {
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		if err := fn(); err != nil {
			m.mu.Lock()
			m.errs = append(m.errs, err)
			m.mu.Unlock()
		}
	}()
}

// Wait returns when everything has stopped, with the errors that stopped it.
func (m *Manager) Wait() error {
	m.wg.Wait()
	m.Alerts.Wait()
	m.mu.Lock()
	defer m.mu.Unlock()
	return errors.Join(m.errs...)
}
