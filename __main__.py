"""fedstack's Pulumi program: `pulumi up -s sim|cloud`. Everything lives in fedinfra.stack."""

from fedinfra.stack import main

main()
