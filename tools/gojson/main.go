// gojson: Go's own encoding/json as an oracle for etcdsnap's Go-compatible
// string encoder. Reads one hex-encoded byte string per line on stdin and
// prints json.Marshal(string(bytes)) for each, one per line.
package main

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
)

func main() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<26)
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	for in.Scan() {
		b, err := hex.DecodeString(in.Text())
		if err != nil {
			fmt.Fprintln(os.Stderr, "bad hex:", err)
			os.Exit(2)
		}
		j, err := json.Marshal(string(b))
		if err != nil {
			fmt.Fprintln(os.Stderr, "marshal:", err)
			os.Exit(2)
		}
		fmt.Fprintln(out, string(j))
	}
}
