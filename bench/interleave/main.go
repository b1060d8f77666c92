// Command interleave runs benchmark variants round-robin and reports each
// variant's time as a ratio to a baseline, per round: on a noisy machine a
// change of load then moves every variant of a round alike, where running
// each variant's -count back to back skews the ratios.
//
//	go run ./interleave -rounds 8 -benchtime 2000x -base 'DistPool/roundtrip/impl=natsjs' \
//	    'DistPool/roundtrip/impl=loom' 'DistPool/roundtrip/impl=natsreq'
//
// Each variant is a benchmark's full name without the "Benchmark" prefix
// (sub-benchmarks by their path). The test binary is built once; each
// round runs every variant once, in an order rotated from round to round.
// It prints, per variant, the min, median and max over the rounds of its
// ns/op divided by the baseline's of the same round, and any custom metric
// the variants report (p50-ms, ...) the same way.
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

func main() {
	rounds := flag.Int("rounds", 6, "rounds: each runs every variant once")
	benchtime := flag.String("benchtime", "1s", "-test.benchtime of each run")
	base := flag.String("base", "", "the baseline variant (required)")
	pkg := flag.String("pkg", ".", "the package of the benchmarks")
	flag.Parse()
	variants := append([]string{*base}, flag.Args()...)
	if *base == "" || len(variants) < 2 || *rounds < 1 {
		fmt.Fprintln(os.Stderr, "usage: interleave -base VARIANT [-rounds N] [-benchtime T] VARIANT...")
		os.Exit(2)
	}
	if err := run(*pkg, variants, *rounds, *benchtime); err != nil {
		fmt.Fprintln(os.Stderr, "interleave:", err)
		os.Exit(1)
	}
}

func run(pkg string, variants []string, rounds int, benchtime string) error {
	dir, err := os.MkdirTemp("", "interleave")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "bench.test")
	build := exec.Command("go", "test", "-c", "-o", bin, pkg)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("building the benchmarks: %w", err)
	}
	// results[v][metric] is one value per round.
	results := make([]map[string][]float64, len(variants))
	for i := range results {
		results[i] = map[string][]float64{}
	}
	for r := range rounds {
		for k := range variants {
			i := (k + r) % len(variants)
			m, err := runOne(bin, variants[i], benchtime)
			if err != nil {
				return err
			}
			for name, v := range m {
				results[i][name] = append(results[i][name], v)
			}
		}
		fmt.Fprintf(os.Stderr, "round %d of %d done\n", r+1, rounds)
	}
	fmt.Printf("%d rounds, interleaved; ratio to %s per round: min / median / max\n\n", rounds, variants[0])
	metrics := []string{}
	for name := range results[0] {
		metrics = append(metrics, name)
	}
	slices.Sort(metrics)
	for _, metric := range metrics {
		fmt.Printf("%s\n", metric)
		for i, v := range variants {
			vals, basev := results[i][metric], results[0][metric]
			if len(vals) != len(basev) {
				continue
			}
			ratios := make([]float64, len(vals))
			for r := range vals {
				ratios[r] = vals[r] / basev[r]
			}
			slices.Sort(ratios)
			abs := slices.Clone(vals)
			slices.Sort(abs)
			fmt.Printf("  %-50s %.3gx / %.3gx / %.3gx   (median %.4g)\n", v, ratios[0], ratios[len(ratios)/2], ratios[len(ratios)-1], abs[len(abs)/2])
		}
	}
	return nil
}

// runOne runs one variant once and returns its metrics by unit.
func runOne(bin, variant, benchtime string) (map[string]float64, error) {
	parts := strings.Split(variant, "/")
	for i, p := range parts {
		parts[i] = "^" + regexp.QuoteMeta(p) + "$"
	}
	parts[0] = "^Benchmark" + strings.TrimPrefix(parts[0], "^")
	cmd := exec.Command(bin, "-test.run=^$", "-test.bench="+strings.Join(parts, "/"), "-test.benchtime="+benchtime, "-test.benchmem")
	cmd.Dir = filepath.Dir(bin)
	if wd, err := os.Getwd(); err == nil {
		cmd.Dir = wd // the package's directory, as go test would run it
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, os.Stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s: %w\n%s", variant, err, out.String())
	}
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		m := map[string]float64{}
		for j := 2; j+1 < len(f); j += 2 {
			if v, err := strconv.ParseFloat(f[j], 64); err == nil {
				m[f[j+1]] = v
			}
		}
		return m, nil
	}
	return nil, fmt.Errorf("%s: no benchmark ran:\n%s", variant, out.String())
}
