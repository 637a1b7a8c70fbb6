// Command report compares rank's metrics before and after fine-tuning: a
// table on stderr and the JSON report on stdout (or --out, written atomically).
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/clipline/clipline/internal/cli"
	"github.com/clipline/clipline/internal/report"
)

const description = "Compare retrieval before and after fine-tuning: a table on stderr, {\"zero_shot\",\"fine_tuned\",\"seconds\"} as JSON."

type command struct {
	ZeroShot  string `name:"zero-shot" required:"" type:"existingfile" placeholder:"FILE" help:"rank's JSON for the base model."`
	FineTuned string `name:"fine-tuned" required:"" type:"existingfile" placeholder:"FILE" help:"rank's JSON for the fine-tuned model."`
	Started   string `name:"started" type:"existingfile" placeholder:"FILE" help:"File holding the Unix time the run started; its age becomes \"seconds\"."`
	Out       string `name:"out" default:"-" placeholder:"FILE" help:"Write the JSON report here (atomically; - is stdout)."`
}

func main() { cli.Main("report", run) }

func run(args []string, stdout, stderr io.Writer) error {
	var c command
	if ctx, err := cli.Parse("report", description, &c, args, stdout, stderr); ctx == nil {
		return err
	}
	before, rawBefore, err := report.LoadMetrics(c.ZeroShot)
	if err != nil {
		return err
	}
	after, rawAfter, err := report.LoadMetrics(c.FineTuned)
	if err != nil {
		return err
	}
	rep := report.Report{ZeroShot: rawBefore, FineTuned: rawAfter}
	if c.Started != "" {
		b, err := os.ReadFile(c.Started)
		if err != nil {
			return err
		}
		start, err := strconv.ParseFloat(strings.TrimSpace(string(b)), 64)
		if err != nil {
			return fmt.Errorf("%s: not a Unix time: %w", c.Started, err)
		}
		rep.Seconds = float64(time.Now().UnixNano())/1e9 - start
	}
	report.Table(stderr, before, after)
	js, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	return cli.WriteOut(c.Out, stdout, append(js, '\n'))
}
