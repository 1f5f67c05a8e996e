from k3sc.main import run

run()
