# bash completion for evt                                    -*- shell-script -*-
# Install: copy to /usr/share/bash-completion/completions/evt (or source it).
# The option lists mirror evt's option tables; a test checks that they agree.

_evt_endpoints='stream: list: channel: topic: redis:// rediss:// kafka://'

_evt()
{
    local cur prev words cword
    if declare -F _init_completion >/dev/null 2>&1; then
        _init_completion -n : || return
    else
        COMPREPLY=()
        cur=${COMP_WORDS[COMP_CWORD]}
        prev=${COMP_WORDS[COMP_CWORD-1]}
        words=("${COMP_WORDS[@]}")
        cword=$COMP_CWORD
    fi

    local commands='publish subscribe tail replay-from-offset copy-between group-create group-delete consumers claim-pending lag ls trim count sandbox help'
    if ((cword == 1)); then
        COMPREPLY=($(compgen -W "$commands --help --version" -- "$cur"))
        return
    fi

    local command=${words[1]} options='' takes_value=''
    case $command in
        publish)
            options='--value-schema --key-schema --register --schema-registry --key -H --header --partition --maxlen --max-age --envelope --raw --on-error
                     --dead-letter --require-subscribers --dry-run --wait-replicas --timeout -X --property
                     -F --property-file -v --verbose -h --help'
            takes_value='--value-schema --key-schema --schema-registry --key -H --header --partition --maxlen --max-age --on-error --dead-letter --wait-replicas
                         --timeout -X --property -F --property-file'
            ;;
        subscribe)
            options='--schema-registry --decode -g --group --consumer --from --create -c --count --exec --on-exec-error
                     --idle-exit --processing --pattern --no-pattern --match --no-ack-filtered
                     --ack-batch --retry-for --stats --metrics -X --property -F --property-file -v --verbose -h --help'
            takes_value='--schema-registry --decode -g --group --consumer --from -c --count --exec --on-exec-error
                         --idle-exit --processing --match --ack-batch --retry-for --stats --metrics
                         -X --property -F --property-file'
            ;;
        tail)
            options='--schema-registry --decode -n --lines -f --follow --match --key -X --property -F --property-file -v --verbose -h --help'
            takes_value='--schema-registry --decode -n --lines --match --key -X --property -F --property-file'
            ;;
        replay-from-offset)
            options='--schema-registry --decode --value-schema --key-schema --register --until -f --follow --to -c --count --rate --match --key --timeout --wait-replicas
                     -X --property -F --property-file -v --verbose -h --help'
            takes_value='--schema-registry --decode --value-schema --key-schema --until --to -c --count --rate --match --key --timeout --wait-replicas -X --property -F --property-file'
            ;;
        copy-between)
            options='--schema-registry --decode --value-schema --key-schema --register --checkpoint -f --follow --exactly-once --key-field --per-partition --stats --metrics
                     --timeout --wait-replicas -X --property -F --property-file -v --verbose -h --help'
            takes_value='--schema-registry --decode --value-schema --key-schema --checkpoint --key-field --stats --metrics --timeout --wait-replicas -X --property -F --property-file'
            ;;
        group-create)
            options='--from --reset --shift-by --dry-run -X --property -F --property-file -v --verbose -h --help'
            takes_value='--from --shift-by -X --property -F --property-file'
            ;;
        group-delete)
            options='--force -X --property -F --property-file -v --verbose -h --help'
            takes_value='-X --property -F --property-file'
            ;;
        consumers)
            options='--prune-idle --to --dry-run -h --help'
            takes_value='--prune-idle --to'
            ;;
        claim-pending)
            options='--schema-registry --decode --min-idle --consumer -c --count --exec --on-exec-error --no-ack
                     --max-deliveries --dead-letter --dry-run --ack-batch
                     -X --property -F --property-file -v --verbose -h --help'
            takes_value='--schema-registry --decode --min-idle --consumer -c --count --exec --on-exec-error
                         --max-deliveries --dead-letter --ack-batch
                         -X --property -F --property-file'
            ;;
        lag)
            options='-g --group --format --watch --window --fail-on --listen --consumer-labels --max-lag --max-lag-age
                     --processing --dead-letter -X --property -F --property-file -v --verbose -h --help'
            takes_value='-g --group --format --watch --window --fail-on --listen --max-lag --max-lag-age --processing
                         --dead-letter -X --property -F --property-file'
            ;;
        ls)
            options='--format -X --property -F --property-file -v --verbose -h --help'
            takes_value='--format -X --property -F --property-file'
            ;;
        trim)
            options='--acked --older-than --maxlen --dry-run -h --help'
            takes_value='--older-than --maxlen'
            ;;
        count)
            options='--until --match --key --exact --schema-registry --decode -X --property -F --property-file -v --verbose -h --help'
            takes_value='--until --match --key --schema-registry --decode -X --property -F --property-file'
            ;;
        sandbox)
            options='--run --brokers --topic -h --help'
            takes_value='--run --brokers --topic'
            ;;
        help)
            ((cword == 2)) && COMPREPLY=($(compgen -W "${commands% help}" -- "$cur"))
            return
            ;;
        *) return ;;
    esac
    takes_value=" ${takes_value//$'\n'/ } "

    # The value of an option: the word after --opt, after --opt= (bash splits the word
    # at '='), or --opt=VALUE as one word when '=' does not break words.
    local option='' value=$cur prefix=''
    if [[ $cur == --*=* ]]; then
        option=${cur%%=*} value=${cur#*=} prefix=$option=
    elif [[ $prev == = && $cword -ge 3 && ${words[cword-2]} == --* ]]; then
        option=${words[cword-2]}
    elif [[ $cur == = && $prev == --* ]]; then
        option=$prev value=''
    elif [[ $takes_value == *" $prev "* ]]; then
        option=$prev
    fi
    if [[ -n $option ]]; then
        local choices=''
        case $option in
            --on-error) choices='fail skip' ;;
            --decode) choices='auto none' ;;
            --on-exec-error) choices='fail continue' ;;
            --format)
                choices='json table prometheus'
                [[ $command == ls ]] && choices='json table'
                ;;
            --from | --until) choices='beginning end' ;;
            --fail-on) choices='stalled falling_behind stalled,falling_behind' ;;
            --to)
                choices=$_evt_endpoints
                compopt -o nospace 2>/dev/null
                ;;
            --dead-letter)
                if [[ $command == claim-pending || $command == lag ]]; then
                    # An endpoint only; publish's may also be a file.
                    choices=$_evt_endpoints
                    compopt -o nospace 2>/dev/null
                else
                    COMPREPLY=($(compgen -f -- "$value"))
                fi
                ;;
            -F|--property-file) COMPREPLY=($(compgen -f -- "$value")) ;;
        esac
        [[ -n $choices ]] && COMPREPLY=($(compgen -W "$choices" -- "$value"))
        [[ -n $prefix ]] && COMPREPLY=("${COMPREPLY[@]/#/$prefix}")
        return
    fi

    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$options" -- "$cur"))
        return
    fi

    # Operands: count those before the cursor (option values are not operands).
    local i operands=0 only_operands=''
    for ((i = 2; i < cword; i++)); do
        if [[ -z $only_operands ]]; then
            [[ ${words[i]} == -- ]] && { only_operands=1; continue; }
            [[ ${words[i]} == -* || ${words[i]} == = || ${words[i-1]} == = ]] && continue
            [[ $takes_value == *" ${words[i-1]} "* ]] && continue
        fi
        ((operands++))
    done
    case $command:$operands in
        publish:0 | tail:0 | replay-from-offset:0 | copy-between:0 | copy-between:1 | group-create:0 \
        | group-delete:0 | consumers:0 | claim-pending:0 | trim:0 | count:0 | subscribe:* | lag:* | ls:*)
            # An endpoint: publish's TARGET, the SOURCE of tail, replay-from-offset, group-create,
            # group-delete, claim-pending and count, the STREAM of trim and consumers, copy-between's SOURCE and TARGET, every
            # SOURCE of subscribe and lag; ls's WHAT (a server, or KIND:GLOB).
            COMPREPLY=($(compgen -W "$_evt_endpoints" -- "$cur"))
            compopt -o nospace 2>/dev/null
            ;;
        publish:*)
            COMPREPLY=($(compgen -f -- "$cur"))
            ;;
        replay-from-offset:1 | count:1)
            # POSITION: also an offset, id, -N or @TIME, typed by hand.
            COMPREPLY=($(compgen -W 'beginning end' -- "$cur"))
            ;;
    esac
    # The GROUP of group-create, group-delete, consumers and claim-pending (their second operand) is a free
    # name: nothing to offer.
}
complete -F _evt evt
