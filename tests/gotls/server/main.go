// gotls-server: an HTTPS server on Go's crypto/tls and net/http, standard
// library only, for hdrtap's Go TLS tests (tests/gotls.rs). HTTP/2 by
// default (ALPN h2); GODEBUG=http2server=0 makes it HTTP/1.1 only. Each
// response echoes the request's X-Seq header as X-Seen-Seq.
package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	cert := flag.String("cert", "", "certificate (PEM)")
	key := flag.String("key", "", "key (PEM)")
	flag.Parse()
	pair, err := tls.LoadX509KeyPair(*cert, *key)
	if err != nil {
		log.Fatal(err)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Seen-Seq", r.Header.Get("X-Seq"))
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintf(w, "ok %s\n", r.URL.Path)
	})
	srv := &http.Server{Handler: mux, TLSConfig: &tls.Config{Certificates: []tls.Certificate{pair}}}
	fmt.Printf("listening %s\n", ln.Addr())
	os.Stdout.Sync()
	log.Fatal(srv.ServeTLS(ln, "", ""))
}
