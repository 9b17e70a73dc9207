package api

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/ftvs/ftvs/ftvs/manager/state"
)

// ClientOptions say how to reach and trust a manager API.
type ClientOptions struct {
	Addr     string // host:port of the management address
	Token    string
	CAFile   string // the server's certificate (stateDir/api-cert.pem) or its CA
	CertFile string // client certificate (mTLS), with KeyFile
	KeyFile  string
}

// Client calls the manager API. It implements state.Controller, so code that
// drives a local daemon can drive a remote one the same way.
type Client struct {
	base  string
	token string
	http  *http.Client
}

var _ state.Controller = (*Client)(nil)

// NewClient builds a client; the server's certificate must verify against
// CAFile (or the system roots when CAFile is empty).
func NewClient(o ClientOptions) (*Client, error) {
	if o.Addr == "" {
		return nil, errors.New("manager api: no address")
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if o.CAFile != "" {
		pool, err := LoadCAPool(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("manager api: trusted certificate: %w", err)
		}
		tc.RootCAs = pool
	}
	if o.CertFile != "" || o.KeyFile != "" {
		c, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("manager api: client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{c}
	}
	return &Client{base: "https://" + o.Addr, token: o.Token,
		http: &http.Client{Transport: &http.Transport{TLSClientConfig: tc, Proxy: nil, ForceAttemptHTTP2: true}}}, nil
}

// APIError is a refusal from the server.
type APIError struct {
	Status int
	Msg    string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("manager api: %d %s: %s", e.Status, http.StatusText(e.Status), e.Msg)
}

func (c *Client) do(ctx context.Context, method, path string, body any) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("manager api %s: %w", c.base, err)
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		var e ErrorBody
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		if json.Unmarshal(b, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(b))
		}
		return nil, &APIError{Status: resp.StatusCode, Msg: e.Error}
	}
	return resp, nil
}

func (c *Client) getJSON(ctx context.Context, path string, out any) error {
	resp, err := c.do(ctx, http.MethodGet, path, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(out); err != nil {
		return fmt.Errorf("manager api %s: %w", path, err)
	}
	return nil
}

func (c *Client) post(ctx context.Context, path string, body any) error {
	if body == nil {
		body = struct{}{}
	}
	resp, err := c.do(ctx, http.MethodPost, path, body)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// Status fetches the pair's state (what `ftvs status` can show).
func (c *Client) Status(ctx context.Context) (*state.Snapshot, error) {
	var s state.Snapshot
	return &s, c.getJSON(ctx, "/api/v1/status", &s)
}

// Events fetches the recent events.
func (c *Client) Events(ctx context.Context) ([]state.Event, error) {
	var e []state.Event
	return e, c.getJSON(ctx, "/api/v1/events", &e)
}

// Metrics fetches the Prometheus exposition.
func (c *Client) Metrics(ctx context.Context) (string, error) {
	resp, err := c.do(ctx, http.MethodGet, "/metrics", nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	return string(b), err
}

// Watch calls fn with each snapshot the server streams until ctx ends, fn
// returns an error or the stream breaks.
func (c *Client) Watch(ctx context.Context, fn func(state.Snapshot) error) error {
	resp, err := c.do(ctx, http.MethodGet, "/api/v1/watch", nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	err = ReadSSE(resp.Body, func(ev SSE) error {
		if ev.Event != "status" {
			return nil
		}
		var s state.Snapshot
		if err := json.Unmarshal([]byte(ev.Data), &s); err != nil {
			return fmt.Errorf("manager api watch: event %s: %w", ev.ID, err)
		}
		return fn(s)
	})
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// SetInService implements state.Controller.
func (c *Client) SetInService(ctx context.Context, node int, in bool) error {
	return c.post(ctx, "/api/v1/coservers/"+strconv.Itoa(node)+"/service", ServiceRequest{InService: in})
}

// MovePort implements state.Controller.
func (c *Client) MovePort(ctx context.Context, node int) error {
	return c.post(ctx, "/api/v1/vs/port", NodeRequest{Node: node})
}

// StartVS implements state.Controller.
func (c *Client) StartVS(ctx context.Context) error { return c.post(ctx, "/api/v1/vs/start", nil) }

// StopVS implements state.Controller.
func (c *Client) StopVS(ctx context.Context) error { return c.post(ctx, "/api/v1/vs/stop", nil) }

// StartResync implements state.Controller.
func (c *Client) StartResync(ctx context.Context, disk string) error {
	return c.post(ctx, "/api/v1/disks/"+url.PathEscape(disk)+"/resync", nil)
}

// StartVerify implements state.Controller.
func (c *Client) StartVerify(ctx context.Context, disk string) error {
	return c.post(ctx, "/api/v1/disks/"+url.PathEscape(disk)+"/verify", nil)
}

// ResolveSplitBrain implements state.Controller.
func (c *Client) ResolveSplitBrain(ctx context.Context, survivor int) error {
	return c.post(ctx, "/api/v1/split-brain/resolve", NodeRequest{Node: survivor})
}

// SSE is one server-sent event.
type SSE struct {
	Event, ID, Data string
}

// maxSSE bounds one event, so a broken server cannot grow the client.
const maxSSE = 8 << 20

// ReadSSE parses a text/event-stream (the subset the server writes: event,
// id, data, comments) and calls fn per event.
func ReadSSE(r io.Reader, fn func(SSE) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxSSE)
	var ev SSE
	var data strings.Builder
	have := false
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			if have {
				ev.Data = strings.TrimSuffix(data.String(), "\n")
				if err := fn(ev); err != nil {
					return err
				}
			}
			ev, have = SSE{}, false
			data.Reset()
			continue
		}
		if strings.HasPrefix(line, ":") {
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "event":
			ev.Event, have = value, true
		case "id":
			ev.ID = value
		case "data":
			if data.Len()+len(value) > maxSSE {
				return errors.New("server-sent event too large")
			}
			data.WriteString(value)
			data.WriteByte('\n')
			have = true
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("event stream: %w", err)
	}
	return io.ErrUnexpectedEOF
}
