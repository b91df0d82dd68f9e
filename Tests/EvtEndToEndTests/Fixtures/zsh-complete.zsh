# Prints what zsh would offer for a command line: zsh zsh-complete.zsh COMPLETIONS_DIR LINE
# (an interactive zsh on a pty, compinit from COMPLETIONS_DIR, compadd wrapped to print matches).
zmodload zsh/zpty
zpty z zsh -f -i
zpty -w z "PROMPT=''; fpath=($1 \$fpath); autoload -U compinit; compinit -u -D"
zpty -w z 'compadd() { if [[ ${@[1,(i)(-|--)]} == *-(O|A|D)\ * ]]; then builtin compadd "$@"; return; fi; local -a hits; builtin compadd -A hits "$@"; local h; for h in $hits; do print -r -- "<CA""ND>$h"; done; builtin compadd "$@"; }'
zpty -w z 'print -r -- "<REA""DY>"'
zpty -r z out '*<READY>*' || exit 1
zpty -w z "$2"$'\t'
zpty -w z $'\C-u''print -r -- "<DO""NE>"'
zpty -r z out '*<DONE>*' || exit 1
zpty -d z
for line in ${(f)out}; do
  [[ $line == *'<CAND>'* ]] && print -r -- "${${line##*<CAND>}%%$'\r'*}"
done
exit 0
