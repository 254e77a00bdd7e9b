// The Go side of ragged's echo benchmark (python -m ragged.bench --net):
//
//	netecho serve              an echo server on 127.0.0.1 (prints its port), the anchor
//	netecho load ADDR CONNS WARMUP SECONDS SIZE
//	                           the load generator: CONNS connections, each one request of
//	                           SIZE bytes in flight at a time (closed loop); prints JSON
//
// Standard library only; built by the benchmark with `go build` when a Go
// toolchain is installed. Loopback only: ADDR must be a 127.0.0.0/8 address.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func serve() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(ln.Addr().(*net.TCPAddr).Port)
	for {
		c, err := ln.Accept()
		if err != nil {
			time.Sleep(5 * time.Millisecond)
			continue
		}
		go func(c net.Conn) {
			defer c.Close()
			buf := make([]byte, 4096)
			for {
				n, err := c.Read(buf)
				if err != nil {
					return
				}
				if _, err := c.Write(buf[:n]); err != nil {
					return
				}
			}
		}(c)
	}
}

// A log-bucket latency histogram: bucket i holds samples near 1.02^i ns.
const nbuckets = 1400

type hist struct{ b [nbuckets]uint64 }

func (h *hist) add(d time.Duration) {
	ns := float64(d.Nanoseconds())
	if ns < 1 {
		ns = 1
	}
	i := int(math.Log(ns) / math.Log(1.02))
	if i >= nbuckets {
		i = nbuckets - 1
	}
	atomic.AddUint64(&h.b[i], 1)
}

func (h *hist) quantile(q float64, total uint64) float64 {
	want := uint64(math.Ceil(q * float64(total)))
	var seen uint64
	for i := 0; i < nbuckets; i++ {
		seen += atomic.LoadUint64(&h.b[i])
		if seen >= want && want > 0 {
			return math.Pow(1.02, float64(i)+0.5) / 1e3 // microseconds
		}
	}
	return 0
}

func load(addr string, conns int, warmup, secs float64, size int) {
	if !strings.HasPrefix(addr, "127.") {
		fmt.Fprintln(os.Stderr, "netecho load: loopback addresses only")
		os.Exit(2)
	}
	var h hist
	var rts, errs, connected uint64
	var measuring int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	stop := make(chan struct{})
	sem := make(chan struct{}, 256) // connect at most 256 at a time
	for i := 0; i < conns; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			var c net.Conn
			var err error
			for try := 0; try < 50; try++ {
				c, err = net.DialTimeout("tcp", addr, 5*time.Second)
				if err == nil {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			<-sem
			if err != nil {
				atomic.AddUint64(&errs, 1)
				return
			}
			defer c.Close()
			msg := make([]byte, size)
			buf := make([]byte, size)
			// One round trip before counting the connection: the kernel completes
			// a connect before the server accepts it, and a connection the server
			// has not accepted yet would measure the server's accept backlog.
			c.SetDeadline(time.Now().Add(30 * time.Second))
			if err := roundTrip(c, msg, buf); err != nil {
				atomic.AddUint64(&errs, 1)
				return
			}
			atomic.AddUint64(&connected, 1)
			<-start
			for {
				select {
				case <-stop:
					return
				default:
				}
				t0 := time.Now()
				c.SetDeadline(t0.Add(10 * time.Second))
				if err := roundTrip(c, msg, buf); err != nil {
					atomic.AddUint64(&errs, 1)
					return
				}
				if atomic.LoadInt32(&measuring) == 1 {
					h.add(time.Since(t0))
					atomic.AddUint64(&rts, 1)
				}
			}
		}()
	}
	// Wait until every connection is up (or failed), bounded.
	deadline := time.Now().Add(60 * time.Second)
	for atomic.LoadUint64(&connected)+atomic.LoadUint64(&errs) < uint64(conns) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	fmt.Fprintln(os.Stderr, "connected", atomic.LoadUint64(&connected))
	close(start)
	time.Sleep(time.Duration(warmup * float64(time.Second)))
	atomic.StoreInt32(&measuring, 1)
	t0 := time.Now()
	fmt.Fprintln(os.Stderr, "measuring")
	time.Sleep(time.Duration(secs * float64(time.Second)))
	atomic.StoreInt32(&measuring, 0)
	elapsed := time.Since(t0).Seconds()
	n := atomic.LoadUint64(&rts)
	out := map[string]interface{}{
		"roundtrips": n,
		"seconds":    elapsed,
		"p50_us":     h.quantile(0.50, n),
		"p99_us":     h.quantile(0.99, n),
		"errors":     atomic.LoadUint64(&errs),
		"connected":  atomic.LoadUint64(&connected),
		"client":     "go " + runtime.Version(),
	}
	close(stop)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
	}
	json.NewEncoder(os.Stdout).Encode(out)
}

func main() {
	if len(os.Args) >= 2 && os.Args[1] == "serve" {
		serve()
		return
	}
	if len(os.Args) == 7 && os.Args[1] == "load" {
		conns, _ := strconv.Atoi(os.Args[3])
		warmup, _ := strconv.ParseFloat(os.Args[4], 64)
		secs, _ := strconv.ParseFloat(os.Args[5], 64)
		size, _ := strconv.Atoi(os.Args[6])
		load(os.Args[2], conns, warmup, secs, size)
		return
	}
	fmt.Fprintln(os.Stderr, "usage: netecho serve | netecho load ADDR CONNS WARMUP SECONDS SIZE")
	os.Exit(2)
}

// roundTrip writes msg and reads its echo into buf.
func roundTrip(c net.Conn, msg, buf []byte) error {
	if _, err := c.Write(msg); err != nil {
		return err
	}
	_, err := io.ReadFull(c, buf)
	return err
}
