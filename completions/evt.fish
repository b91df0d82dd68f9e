# fish completion for evt. Install: copy to ~/.config/fish/completions/evt.fish
# The option lists mirror evt's option tables; a test checks that they agree.

set -l commands publish subscribe tail replay-from-offset copy-between group-create group-delete consumers claim-pending lag ls trim count sandbox help

function __evt_operands
    # Prints how many operands precede the cursor, not counting option values; fails
    # when the cursor is at the value of an option given as a separate word.
    set -l words (commandline -opc)
    set -e words[1]   # evt
    set -e words[1]   # the command
    set -l skip 0
    set -l only_operands 0
    set -l count 0
    for word in $words
        if test $skip = 1
            set skip 0
            continue
        end
        if test $only_operands = 1
            set count (math $count + 1)
            continue
        end
        switch $word
            case --
                set only_operands 1
            case '--*=*'
            case --key --header --partition --maxlen --max-age --older-than --on-error --dead-letter --timeout \
                --property --property-file --lines --run --brokers --topic \
                --group --consumer --from --count --exec --on-exec-error --idle-exit \
                --processing --ack-batch --retry-for --min-idle --max-deliveries \
                --until --to --rate --checkpoint --key-field --stats --metrics \
                --format --watch --max-lag --max-lag-age --window --fail-on --listen \
                --value-schema --key-schema --schema-registry --decode --match --wait-replicas \
                --shift-by --prune-idle \
                -H -X -F -n -g -c
                set skip 1
            case '-*'
            case '*'
                set count (math $count + 1)
        end
    end
    echo $count
    test $skip = 0
end

function __evt_needs_endpoint
    # True while the command line has a command but no endpoint operand yet.
    set -l count (__evt_operands); or return 1
    test $count = 0
end

function __evt_at_operand
    # True unless the cursor is at an option's value.
    __evt_operands >/dev/null
end

complete -c evt -f
complete -c evt -n "not __fish_seen_subcommand_from $commands" -l help -d 'Show help and exit'
complete -c evt -n "not __fish_seen_subcommand_from $commands" -l version -d 'Show the version and exit'
complete -c evt -n "not __fish_seen_subcommand_from $commands" -a publish -d 'Send NDJSON lines to a topic, stream, list or channel'
complete -c evt -n "not __fish_seen_subcommand_from $commands" -a subscribe -d 'Consume events, acknowledging each once handed over'
complete -c evt -n "not __fish_seen_subcommand_from $commands" -a tail -d 'Print the last events of a topic, stream, list or channel'
complete -c evt -n "not __fish_seen_subcommand_from $commands" -a replay-from-offset -d 'Replay a topic, partition or stream from a position'
complete -c evt -n "not __fish_seen_subcommand_from $commands" -a copy-between -d 'Copy a topic, stream or list into another, resumably'
complete -c evt -n "not __fish_seen_subcommand_from $commands" -a group-create -d 'Create a consumer group on a stream or topic'
complete -c evt -n "not __fish_seen_subcommand_from $commands" -a group-delete -d 'Delete a consumer group of a stream or topic'
complete -c evt -n "not __fish_seen_subcommand_from $commands" -a consumers -d "List a stream group's consumers, remove idle ones"
complete -c evt -n "not __fish_seen_subcommand_from $commands" -a claim-pending -d 'Take over stream entries left unacknowledged too long'
complete -c evt -n "not __fish_seen_subcommand_from $commands" -a lag -d 'Show how far consumer groups are behind'
complete -c evt -n "not __fish_seen_subcommand_from $commands" -a trim -d "Remove acknowledged, old or surplus entries from a stream's head"
complete -c evt -n "not __fish_seen_subcommand_from $commands" -a count -d 'Count the records of a topic, stream or list, or of a range'
complete -c evt -n "not __fish_seen_subcommand_from $commands" -a sandbox -d 'Run throwaway local brokers'
complete -c evt -n "not __fish_seen_subcommand_from $commands" -a help -d 'Show help for evt or one command'
complete -c evt -n "not __fish_seen_subcommand_from $commands" -a ls -d 'List what the servers hold: topics, streams, lists, channels'
complete -c evt -n "__fish_seen_subcommand_from help" -a "publish subscribe tail replay-from-offset copy-between group-create group-delete consumers claim-pending lag ls trim count sandbox"

# Endpoints: the first operand of publish, tail, replay-from-offset, group-create,
# group-delete, consumers, claim-pending and trim, both operands of copy-between (SOURCE and
# TARGET), every operand of subscribe, lag and ls (a server, or KIND:GLOB). The second operand of group-create,
# group-delete, consumers and claim-pending, GROUP, is a free name.
set -l endpoints stream: list: channel: topic: redis:// rediss:// kafka://
for kind in $endpoints
    complete -c evt -n "__fish_seen_subcommand_from publish tail replay-from-offset group-create group-delete consumers claim-pending trim count; and __evt_needs_endpoint" -a $kind
    complete -c evt -n "__fish_seen_subcommand_from subscribe lag ls; and __evt_at_operand" -a $kind
    complete -c evt -n "__fish_seen_subcommand_from copy-between; and __evt_at_operand; and test (__evt_operands) -lt 2" -a $kind
end
# publish reads FILE operands after the target.
complete -c evt -n "__fish_seen_subcommand_from publish; and not __evt_needs_endpoint" -F

set -l publish "__fish_seen_subcommand_from publish"
complete -c evt -n $publish -l key -r -d 'Kafka: record key from this JSON path'
complete -c evt -n $publish -s H -l header -r -d 'Kafka: add a header (NAME=VALUE)'
complete -c evt -n $publish -l partition -r -d 'Kafka: send every record to partition N'
complete -c evt -n $publish -l maxlen -r -d 'Stream: trim to about N entries'
complete -c evt -n $publish -l max-age -x -d 'Stream: trim entries older than DURATION as it adds'
complete -c evt -n $publish -l envelope -d "Read records in evt's output shape"
complete -c evt -n $publish -l raw -d 'Send each line as it is, unchecked'
complete -c evt -n $publish -l on-error -x -a 'fail skip' -d 'What a bad line does'
complete -c evt -n $publish -l dead-letter -r -F -d 'Append bad lines to FILE'
complete -c evt -n $publish -l require-subscribers -d 'Channel: no subscriber means not delivered'
complete -c evt -n $publish -l dry-run -d 'Check the input, report bad lines; send nothing'
complete -c evt -n $publish -l wait-replicas -x -d 'Redis: delivered once N replicas have it'
complete -c evt -n $publish -l timeout -x -d 'How long to wait for acknowledgements'

set -l subscribe "__fish_seen_subcommand_from subscribe"
complete -c evt -n $subscribe -s g -l group -x -d 'Read as a member of a consumer group'
complete -c evt -n $subscribe -l consumer -x -d 'Stream group member name (default evt-HOSTNAME)'
complete -c evt -n $subscribe -l create -d 'Create the group if it does not exist'
complete -c evt -n $subscribe -s c -l count -x -d 'Stop after N events'
complete -c evt -n $subscribe -l exec -x -d 'Run COMMAND per event, the record on its stdin'
complete -c evt -n $subscribe -l on-exec-error -x -a 'fail continue' -d 'What a failed --exec does'
complete -c evt -n $subscribe -l idle-exit -x -d 'Exit 0 when nothing arrived for DURATION'
complete -c evt -n $subscribe -l processing -x -d 'List: keep items in LIST until handed over'
complete -c evt -n $subscribe -l pattern -d 'Channel: subscribe by pattern'
complete -c evt -n $subscribe -l no-pattern -d 'Channel: subscribe to the name as written'
complete -c evt -n $subscribe -l match -x -d 'Only records where key=GLOB, header.NAME=GLOB or value.PATH=VALUE'
complete -c evt -n $subscribe -l no-ack-filtered -d 'Leave the records --match filtered out pending'
complete -c evt -n $subscribe -l ack-batch -x -d 'Without --exec, write and acknowledge at most N events at a time'
complete -c evt -n $subscribe -l retry-for -x -d 'How long to reconnect a lost Redis connection'
complete -c evt -n $subscribe -l stats -x -d "Print events consumed, rate, the group's lag and p50/p99 latencies every DURATION"
complete -c evt -n $subscribe -l metrics -x -d 'Serve counters and latency histograms at http://HOST:PORT/metrics'

set -l tail "__fish_seen_subcommand_from tail"
complete -c evt -n $tail -s n -l lines -x -d 'Show the last N events'
complete -c evt -n $tail -s f -l follow -d 'Keep printing new events'
complete -c evt -n $tail -l match -x -d 'Only records where key=GLOB, header.NAME=GLOB or value.PATH=VALUE'
complete -c evt -n $tail -l key -x -d 'Topic: only the partition KEY hashes to, only records with key KEY'

set -l replay "__fish_seen_subcommand_from replay-from-offset"
# The second operand, POSITION: also an offset, id, -N or @TIME, typed by hand.
complete -c evt -n "$replay; and __evt_at_operand; and test (__evt_operands) = 1" -a 'beginning end'
complete -c evt -n $replay -l until -x -a 'beginning end' -d 'Stop after this position (inclusive)'
complete -c evt -n $replay -s f -l follow -d 'Do not stop at the end: go on with new events'
complete -c evt -n $replay -l to -x -a "$endpoints" -d 'Write the events into TARGET instead of stdout'
complete -c evt -n $replay -s c -l count -x -d 'Stop after N events'
complete -c evt -n $replay -l rate -x -d 'Replay at most N events per second'
complete -c evt -n $replay -l match -x -d 'Only records where key=GLOB, header.NAME=GLOB or value.PATH=VALUE'
complete -c evt -n $replay -l key -x -d 'Topic: only the partition KEY hashes to, only records with key KEY'
complete -c evt -n $replay -l timeout -x -d 'With --to: how long to wait for acknowledgements'
complete -c evt -n $replay -l wait-replicas -x -d 'Redis: delivered once N replicas have it'

set -l copy "__fish_seen_subcommand_from copy-between"
complete -c evt -n $copy -l checkpoint -x -d 'Keep the position in Redis and resume from it'
complete -c evt -n $copy -s f -l follow -d 'Do not stop at the end: go on copying new events'
complete -c evt -n $copy -l exactly-once -d 'Into a stream: one transaction; stream to topic: resume after what arrived'
complete -c evt -n $copy -l key-field -x -d 'Stream to topic: the Kafka key is this field (or FIELD.path)'
complete -c evt -n $copy -l per-partition -d 'Topic to stream: one stream per partition (TARGET:PARTITION)'
complete -c evt -n $copy -l stats -x -d 'Print events copied, rate, position, lag and p50/p99 end-to-end time every DURATION'
complete -c evt -n $copy -l metrics -x -d "With -f: serve the copy's figures at http://HOST:PORT/metrics"
complete -c evt -n $copy -l timeout -x -d 'How long to wait for acknowledgements'
complete -c evt -n $copy -l wait-replicas -x -d 'Redis: delivered once N replicas have it'

set -l group_create "__fish_seen_subcommand_from group-create"
complete -c evt -n $group_create -l reset -d 'Move an existing group to --from'
complete -c evt -n $group_create -l shift-by -x -d 'With --reset: move the group by N events (negative goes back)'
complete -c evt -n $group_create -l dry-run -d 'With --reset: print the current and new positions; change nothing'

set -l group_delete "__fish_seen_subcommand_from group-delete"
complete -c evt -n $group_delete -l force -d 'Stream: delete the group even though entries are pending'

set -l consumers "__fish_seen_subcommand_from consumers"
complete -c evt -n $consumers -l prune-idle -x -d 'Remove each consumer idle longer than DURATION'
complete -c evt -n $consumers -l to -x -d 'The consumer that takes their pending entries'
complete -c evt -n $consumers -l dry-run -d 'Print the consumers it would remove; change nothing'

set -l claim_pending "__fish_seen_subcommand_from claim-pending"
complete -c evt -n $claim_pending -l min-idle -x -d 'Claim entries unacknowledged for at least DURATION'
complete -c evt -n $claim_pending -l consumer -x -d 'Claim as NAME (default evt-HOSTNAME-PID)'
complete -c evt -n $claim_pending -s c -l count -x -d 'Claim at most N entries'
complete -c evt -n $claim_pending -l exec -x -d 'Run COMMAND per entry, the record on its stdin'
complete -c evt -n $claim_pending -l on-exec-error -x -a 'fail continue' -d 'What a failed --exec does'
complete -c evt -n $claim_pending -l no-ack -d 'Only take ownership: acknowledge nothing'
complete -c evt -n $claim_pending -l max-deliveries -x -d 'Entries delivered N times or more go to --dead-letter'
complete -c evt -n $claim_pending -l dead-letter -x -a "$endpoints" -d 'Endpoint for entries delivered too often'
complete -c evt -n $claim_pending -l dry-run -d 'Show what would be claimed; change nothing'
complete -c evt -n $claim_pending -l ack-batch -x -d 'Claim and acknowledge N entries at a time'

set -l lag "__fish_seen_subcommand_from lag"
complete -c evt -n $lag -s g -l group -x -d 'Only this group (repeatable)'
complete -c evt -n $lag -l format -x -a 'json table prometheus' -d 'Output: NDJSON, a table or Prometheus metrics'
complete -c evt -n $lag -l watch -x -d 'Repeat every DURATION until stopped, with status and rates'
complete -c evt -n $lag -l window -x -d 'Status and rates over the last N reads'
complete -c evt -n $lag -l fail-on -x -a 'stalled falling_behind stalled,falling_behind' -d 'Exit 4 when a group is in one of these statuses'
complete -c evt -n $lag -l listen -x -d 'Serve Prometheus metrics at http://HOST:PORT/metrics until stopped'
complete -c evt -n $lag -l consumer-labels -d 'Prometheus: also the series per consumer of a stream group'
complete -c evt -n $lag -l max-lag -x -d 'Exit 4 when a group has more than N events left'
complete -c evt -n $lag -l max-lag-age -x -d "Exit 4 when a group's oldest unconsumed event is older"
complete -c evt -n $lag -l processing -x -d "List: also show this processing list's length"
complete -c evt -n $lag -l dead-letter -x -a "$endpoints" -d 'Also show the depth of this dead-letter stream, list or topic'

set -l ls "__fish_seen_subcommand_from ls"
complete -c evt -n $ls -l format -x -a 'json table' -d 'Output: NDJSON or tables'

set -l trim "__fish_seen_subcommand_from trim"
complete -c evt -n $trim -l acked -d 'Remove what every group has consumed and acknowledged'
complete -c evt -n $trim -l older-than -x -d 'Remove entries older than DURATION'
complete -c evt -n $trim -l maxlen -x -d 'Keep the newest N entries'
complete -c evt -n $trim -l dry-run -d 'Print the plan; change nothing'

set -l counter "__fish_seen_subcommand_from count"
# The second operand, POSITION: also an offset, id, -N or @TIME, typed by hand.
complete -c evt -n "$counter; and __evt_at_operand; and test (__evt_operands) = 1" -a 'beginning end'
complete -c evt -n $counter -l until -x -a 'beginning end' -d 'Count up to this position (inclusive)'
complete -c evt -n $counter -l match -x -d 'Only records where key=GLOB, header.NAME=GLOB or value.PATH=VALUE'
complete -c evt -n $counter -l key -x -d 'Topic: only the partition KEY hashes to, only records with key KEY'
complete -c evt -n $counter -l exact -d 'Topic: count by reading when the watermarks cannot be trusted'

set -l positioned "__fish_seen_subcommand_from subscribe group-create"
complete -c evt -n $positioned -l from -x -a 'beginning end' -d 'Where a new reader or group starts'

set -l schema_readers "__fish_seen_subcommand_from tail subscribe replay-from-offset copy-between claim-pending count"
complete -c evt -n $schema_readers -l decode -x -a 'auto none' -d 'Decode framed Avro and JSON Schema keys and values, or not'
set -l schema_writers "__fish_seen_subcommand_from publish replay-from-offset copy-between"
complete -c evt -n $schema_writers -l value-schema -r -F -d 'Encode each value with a schema: id, topic, SUBJECT[:VERSION] or a file'
complete -c evt -n $schema_writers -l key-schema -r -F -d 'Encode each key with a schema'
complete -c evt -n $schema_writers -l register -d "Register the schema file under the topic's subject"
set -l schemas "__fish_seen_subcommand_from publish tail subscribe replay-from-offset copy-between claim-pending count"
complete -c evt -n $schemas -l schema-registry -x -d 'The Confluent Schema Registry URL'

set -l kafka "__fish_seen_subcommand_from publish subscribe tail replay-from-offset copy-between group-create group-delete claim-pending lag count ls"
complete -c evt -n $kafka -s X -l property -x -d 'Set a librdkafka property (KEY=VALUE)'
complete -c evt -n $kafka -s F -l property-file -r -F -d 'Read librdkafka properties from FILE'
complete -c evt -n $kafka -s v -l verbose -d "Show the Kafka client's log lines"

set -l sandbox "__fish_seen_subcommand_from sandbox"
complete -c evt -n $sandbox -l run -x -d 'Run COMMAND against the sandbox'
complete -c evt -n $sandbox -l brokers -x -d 'Number of mock Kafka brokers'
complete -c evt -n $sandbox -l topic -x -d 'Create a topic (NAME:PARTITIONS)'

complete -c evt -n "__fish_seen_subcommand_from $commands" -s h -l help -d 'Show help and exit'
