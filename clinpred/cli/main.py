import typer
app = typer.Typer()
@app.command()
def version() -> None:
    print("x")
