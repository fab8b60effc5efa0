import Celeris
import WordCountTasks

// The whole celeris-worker command line (-b, -Q, -c, -E, --metrics-port, --result-expires, …),
// remote control, events and signals, running your tasks:
//     wordcount-worker -b redis://127.0.0.1:6379/0 -c 100
CelerisWorker.main(tasks: [WordCountTasks.count])
