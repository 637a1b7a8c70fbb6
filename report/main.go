// Command report compares rank's metrics before and after fine-tuning: a
// table on stderr and the JSON report on stdout (or --out, written atomically);
// --html also writes a self-contained HTML report.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/clipline/clipline/internal/atomicfile"
	"github.com/clipline/clipline/internal/cli"
	"github.com/clipline/clipline/internal/metrics"
	"github.com/clipline/clipline/internal/report"
	"github.com/clipline/clipline/internal/results"
)

const description = "Compare retrieval before and after fine-tuning: a table on stderr, {\"zero_shot\",\"fine_tuned\",\"seconds\"} as JSON, and with --html one offline HTML file: header, metrics, Recall@K and training curves, text→image and image→text galleries."

type command struct {
	ZeroShot  string `name:"zero-shot" required:"" type:"existingfile" placeholder:"FILE" help:"rank's JSON for the base model."`
	FineTuned string `name:"fine-tuned" required:"" type:"existingfile" placeholder:"FILE" help:"rank's JSON for the fine-tuned model."`
	Started   string `name:"started" type:"existingfile" placeholder:"FILE" help:"File holding the Unix time the run started; its age becomes \"seconds\"."`
	Out       string `name:"out" default:"-" placeholder:"FILE" help:"Write the JSON report here (atomically; - is stdout)."`

	HTML             string `name:"html" placeholder:"FILE" help:"Also write a self-contained HTML report here (atomically): galleries, Recall@K and training curves."`
	ZeroShotResults  string `name:"zero-shot-results" type:"existingfile" placeholder:"FILE" help:"rank --top-k 5 (or more) --results of the base model (for --html)."`
	FineTunedResults string `name:"fine-tuned-results" type:"existingfile" placeholder:"FILE" help:"rank --top-k 5 (or more) --results of the fine-tuned model (for --html)."`
	PathsFrom        string `name:"paths-from" type:"existingfile" placeholder:"FILE" help:"A stream with image_id and image_path or image_bytes (prepare's or decode's), for the HTML's thumbnails."`
	Run              string `name:"run" type:"existingdir" placeholder:"DIR" help:"train's output directory, for the HTML's header and training curves."`
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
	if c.HTML != "" {
		if err := writeHTML(c, before, after, rep.Seconds); err != nil {
			return err
		}
	}
	js, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	return cli.WriteOut(c.Out, stdout, append(js, '\n'))
}

func writeHTML(c command, before, after metrics.Summary, seconds float64) error {
	if c.ZeroShotResults == "" || c.FineTunedResults == "" || c.PathsFrom == "" {
		return errors.New("--html needs --zero-shot-results, --fine-tuned-results and --paths-from")
	}
	in := report.HTMLInput{ZeroShot: before, FineTuned: after, RunDir: c.Run, Seconds: seconds}
	var err error
	if in.Before, err = results.Read(c.ZeroShotResults); err != nil {
		return err
	}
	if in.After, err = results.Read(c.FineTunedResults); err != nil {
		return err
	}
	if in.Images, err = report.LoadImages(c.PathsFrom); err != nil {
		return err
	}
	defer in.Images.Close()
	page, err := report.BuildPage(in)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := page.WriteHTML(&buf); err != nil {
		return err
	}
	return atomicfile.WriteFile(c.HTML, buf.Bytes(), 0o644)
}
