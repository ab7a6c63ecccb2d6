// gotls-client: an HTTPS client on Go's crypto/tls and net/http, standard
// library only, for hdrtap's Go TLS tests (tests/gotls.rs). Sends -n GET
// requests to -url/<id>/<seq> with header X-Seq: <seq>, -c at a time over
// shared keep-alive connections (HTTP/2 when the server offers it, unless
// GODEBUG=http2client=0), after waiting -delay; with -for, again and again
// until that long has passed. Prints "seq <n> <status> <x-seen-seq>" per
// request and "done <ok> <failed>"; exits 1 if any request failed.
package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"time"
)

func main() {
	url := flag.String("url", "", "base URL")
	id := flag.String("id", "x", "path prefix")
	n := flag.Int("n", 1, "requests per round")
	c := flag.Int("c", 1, "requests at a time")
	delay := flag.Duration("delay", 0, "wait before the first request")
	dur := flag.Duration("for", 0, "repeat rounds until this long has passed")
	quiet := flag.Bool("q", false, "no per-request lines")
	flag.Parse()
	tr := &http.Transport{
		TLSClientConfig:     &tls.Config{InsecureSkipVerify: true},
		ForceAttemptHTTP2:   true,
		MaxIdleConnsPerHost: *c,
	}
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	time.Sleep(*delay)
	var mu sync.Mutex
	ok, failed := 0, 0
	start := time.Now()
	seq := 0
	for round := 0; round == 0 || time.Since(start) < *dur; round++ {
		jobs := make(chan int)
		var wg sync.WaitGroup
		for w := 0; w < *c; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for s := range jobs {
					req, _ := http.NewRequest("GET", fmt.Sprintf("%s/%s/%d", *url, *id, s), nil)
					req.Header.Set("X-Seq", fmt.Sprint(s))
					resp, err := client.Do(req)
					mu.Lock()
					if err != nil {
						failed++
						fmt.Printf("seq %d error %v\n", s, err)
					} else {
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						ok++
						if !*quiet {
							fmt.Printf("seq %d %d %s %s\n", s, resp.StatusCode, resp.Header.Get("X-Seen-Seq"), resp.Proto)
						}
					}
					mu.Unlock()
				}
			}()
		}
		for i := 0; i < *n; i++ {
			seq++
			jobs <- seq
		}
		close(jobs)
		wg.Wait()
	}
	fmt.Printf("done %d %d\n", ok, failed)
	if failed > 0 {
		os.Exit(1)
	}
}
