// Command gosort is the oracle for the port of Go's sort.Sort: each input
// line holds integers; they are sorted with sort.Sort on their values only
// (equal values tie), and the line printed back is the original positions
// in the order Go left them.
package main

import (
	"bufio"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
)

type item struct{ v, pos int }
type byValue []item

func (s byValue) Len() int           { return len(s) }
func (s byValue) Less(i, j int) bool { return s[i].v < s[j].v }
func (s byValue) Swap(i, j int)      { s[i], s[j] = s[j], s[i] }

func main() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<26)
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	for in.Scan() {
		fields := strings.Fields(in.Text())
		items := make(byValue, len(fields))
		for i, f := range fields {
			v, _ := strconv.Atoi(f)
			items[i] = item{v, i}
		}
		sort.Sort(items)
		pos := make([]string, len(items))
		for i, it := range items {
			pos[i] = strconv.Itoa(it.pos)
		}
		fmt.Fprintln(out, strings.Join(pos, " "))
	}
}
