// Command foodpipe is a Kafka food-order pipeline: an order producer, a
// consumer that stores orders in PostgreSQL, an embedded broker and a
// one-command demo. Run it without arguments for the list of commands.
package main

import (
	"os"

	"foodpipe/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], ".env"))
}
