package api

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Files the server keeps in its state directory.
const (
	CertFileName  = "api-cert.pem"
	KeyFileName   = "api-key.pem"
	TokenFileName = "api-token"
)

// LoadOrCreateCert returns the certificate in certFile/keyFile when both are
// given, else the self-signed one in stateDir, generated at first start for
// the listen address's host (and the machine's hostname). Operators copy
// stateDir/api-cert.pem to the machines that run `ftvs ctl`.
func LoadOrCreateCert(certFile, keyFile, stateDir, listen string) (tls.Certificate, error) {
	if certFile != "" || keyFile != "" {
		c, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return c, fmt.Errorf("api certificate %s / %s: %w", certFile, keyFile, err)
		}
		return c, nil
	}
	cp, kp := filepath.Join(stateDir, CertFileName), filepath.Join(stateDir, KeyFileName)
	if c, err := tls.LoadX509KeyPair(cp, kp); err == nil {
		return c, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return c, fmt.Errorf("api certificate in %s: %w", stateDir, err)
	}
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return tls.Certificate{}, fmt.Errorf("api state dir: %w", err)
	}
	certPEM, keyPEM, err := selfSigned(listen)
	if err != nil {
		return tls.Certificate{}, err
	}
	if err := writeNew(kp, keyPEM, 0o600); err != nil {
		return tls.Certificate{}, err
	}
	if err := writeNew(cp, certPEM, 0o644); err != nil {
		return tls.Certificate{}, err
	}
	return tls.X509KeyPair(certPEM, keyPEM)
}

func writeNew(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func selfSigned(listen string) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("api key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: "ftvs manager", Organization: []string{"ftvs"}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().AddDate(10, 0, 0),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true}
	host, _, _ := net.SplitHostPort(listen)
	for _, h := range []string{host, "localhost", "127.0.0.1", "::1"} {
		if ip := net.ParseIP(h); ip != nil && !ip.IsUnspecified() {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" && ip == nil {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	if hn, err := os.Hostname(); err == nil && hn != "" {
		tmpl.DNSNames = append(tmpl.DNSNames, hn)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("api certificate: %w", err)
	}
	kd, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd}), nil
}

// LoadOrCreateToken reads the bearer token from tokenFile, or from
// stateDir/api-token, generating a random one there at first start.
func LoadOrCreateToken(tokenFile, stateDir string) (string, error) {
	path := tokenFile
	if path == "" {
		path = filepath.Join(stateDir, TokenFileName)
	}
	b, err := os.ReadFile(path)
	if err == nil {
		tok := strings.TrimSpace(string(b))
		if len(tok) < 16 {
			return "", fmt.Errorf("api token in %s is shorter than 16 characters", path)
		}
		return tok, nil
	}
	if !errors.Is(err, os.ErrNotExist) || tokenFile != "" {
		return "", fmt.Errorf("api token: %w", err)
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	tok := hex.EncodeToString(raw)
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return "", fmt.Errorf("api state dir: %w", err)
	}
	return tok, writeNew(path, []byte(tok+"\n"), 0o600)
}

// LoadCAPool reads PEM certificates (the CA that signs operators' client
// certificates, or the server certificate a client trusts).
func LoadCAPool(file string) (*x509.CertPool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s holds no PEM certificate", file)
	}
	return pool, nil
}
