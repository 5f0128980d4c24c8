package cmd

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/embedtoken/embedtoken/catalog"
)

// testCert writes a throwaway self-signed certificate (a CA for itself) for
// 127.0.0.1 and its key to dir, and returns their paths and the parsed cert.
func testCert(t *testing.T, dir, name string) (string, string, *x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	certFile, keyFile := filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	_ = os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	_ = os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600)
	return certFile, keyFile, cert, key
}

// TestTLSListener: a listener with a tls block serves TLS 1.2+ only, and
// with client_ca_file requires a client certificate from that CA.
func TestTLSListener(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, serverCert, _ := testCert(t, dir, "server")
	caFile, caKeyFile, _, _ := testCert(t, dir, "client")
	roots := x509.NewCertPool()
	roots.AddCert(serverCert)
	clientPair, err := tls.LoadX509KeyPair(caFile, caKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	start := func(cfg *catalog.TLS) string {
		s := &server{name: "test", addr: "127.0.0.1:0", tls: cfg, srv: newHTTPServer(ok, zap.NewNop(), 0)}
		if err := listen([]*server{s}); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- serve(ctx, zap.NewNop(), time.Second, []*server{s}) }()
		t.Cleanup(func() { cancel(); <-done })
		return s.ln.Addr().String()
	}
	get := func(addr string, cfg *tls.Config) error {
		c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
		resp, err := c.Get("https://" + addr + "/")
		if err == nil {
			resp.Body.Close()
		}
		return err
	}

	addr := start(&catalog.TLS{CertFile: certFile, KeyFile: keyFile})
	if err := get(addr, &tls.Config{RootCAs: roots}); err != nil {
		t.Errorf("TLS listener: %v", err)
	}
	if err := get(addr, &tls.Config{RootCAs: roots, MaxVersion: tls.VersionTLS11}); err == nil {
		t.Error("TLS 1.1 accepted")
	}

	mtls := start(&catalog.TLS{CertFile: certFile, KeyFile: keyFile, ClientCAFile: caFile})
	if err := get(mtls, &tls.Config{RootCAs: roots}); err == nil {
		t.Error("a client without a certificate was accepted")
	}
	if err := get(mtls, &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{clientPair}}); err != nil {
		t.Errorf("a client with a certificate from client_ca_file: %v", err)
	}

	bad := &server{name: "bad", addr: "127.0.0.1:0", tls: &catalog.TLS{CertFile: filepath.Join(dir, "nope.crt"), KeyFile: keyFile}, srv: newHTTPServer(ok, zap.NewNop(), 0)}
	if err := listen([]*server{bad}); err == nil {
		t.Error("a missing certificate file was accepted")
	}
}
