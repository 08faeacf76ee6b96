// Package crashtest is the crash-robustness suite of labourlink: its tests start real service
// processes (services/devtools/proctest), crash them at random points, over and over, and check after
// every crash that nothing acknowledged was lost and that the data file is sound.
//
// Crashes come from two sides: the test kills a process with SIGKILL after a random time, and
// each process may start with one crash point armed at random (services/platform/failpoint: before or
// after a bbolt commit, after an outbox delivery and before its removal, after an import batch
// commit or before the import's reply), which kills the process there or panics. After each
// crash the test checks the file the process left (bbolt's own consistency check, Tx.Check, on
// the file; opening it again with its schema) and the service's promises:
//
//   - TestCrashDuringImport: a sending process imports rosters while it is crashed. Every
//     import acknowledged before a crash is complete on disk with the summary it returned, every
//     good row of it is in the roster, and an import cut by a crash completes when sent again.
//     At the end each row is stored exactly once (created counts, workers on disk).
//   - TestCrashDuringDelivery: the coordination, sending and receiving processes run together
//     while any of them is crashed. The receiving service takes intake calls (arrivals and
//     onboardings, each writing ledger events to its outbox in the same transaction); departure
//     events are committed to the sending service's outbox while it is down. At the end every
//     event acknowledged (or committed) reaches the ledger exactly once: no event lost, none
//     listed twice, none that was never written, and the batches count each worker once.
//
// The short version (a few cycles) runs with `go test ./...`; -short skips it. The long one:
//
//	go test ./services/devtools/crashtest -run Crash -cycles 300 -timeout 60m -v
//
// -seed N repeats a run's random choices (each test logs its seed); the failures it finds name
// the cycle, the crash and the process logs.
package crashtest
